#pragma once
// How both programs end when their command line says so: --help and --version print and
// exit 0, a parse error prints CLI11's message and exits with the usage code. One rule for
// preforkd and preforkctl, so that scripts see the same codes from both.

#include <preforkd/core/exit_codes.hpp>

#include <CLI/CLI.hpp>

#include <optional>

namespace preforkd {

// Parses `argv` into `app`; the exit code to end with when parsing ends the program, or
// nullopt to go on.
[[nodiscard]] inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --help-all, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return exit_code::usage;
  }
  return std::nullopt;
}

}  // namespace preforkd
