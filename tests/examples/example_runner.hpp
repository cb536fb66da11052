#pragma once
// Runs one directory of examples/ against the real server it is written for: copies it to
// a temp dir with its placeholders filled in, starts preforkd on its preforkd.toml, and
// checks what every example must do (issue 11): N distinct workers answer, a SIGKILLed
// worker is replaced and serves, a reload under a fresh-connection client loses nothing,
// and a graceful `preforkctl stop` leaves no process of the server behind.

#include <string>
#include <vector>

namespace examples {

struct Example {
  std::string name{};                        // the directory under examples/
  std::vector<std::string> programs{};       // must exist (a missing one fails, never skips)
  std::string install_hint{};                // which Debian package provides them
  std::string slow_path{};                   // a path answered after ~1 s, or "" when none
  bool go_build = false;                   // run `go build -o hello .` in the copy first
};

// Every check, as Catch2 assertions in the calling test case.
void run_example(const Example& example);

}  // namespace examples
