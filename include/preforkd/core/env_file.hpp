#pragma once
// [worker] env_file: files of KEY=VALUE lines in systemd's EnvironmentFile= syntax
// (systemd.exec(5), src/basic/env-file.c): `#` and `;` start a comment line, blank lines
// are skipped, whitespace around the key and before the value is dropped, a value may be
// 'single quoted' (taken as it is, newlines included) or "double quoted" (\" \\ \` \$
// unescaped, any other backslash kept), an unquoted backslash takes the next character as
// it is, and a backslash at the end of a line continues the value on the next one.
// Stricter than systemd, which skips them with a warning: a line that is not KEY=VALUE, an
// invalid name (letters, digits and "_", not starting with a digit) and a NUL byte are
// errors with their line, and so is a name preforkd sets itself. Pure: the config loader reads the files.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace preforkd {

struct EnvFileError {
  int line = 0;  // 1-based, where the bad assignment starts
  std::string message;
};

struct EnvFileParse {
  // In file order; a name set twice keeps its first place and its last value (as systemd).
  std::vector<std::pair<std::string, std::string>> vars;
  std::optional<EnvFileError> error;  // the first one; vars are then incomplete
};

[[nodiscard]] EnvFileParse parse_env_file(std::string_view text);

// A valid environment variable name in systemd's sense (and the shell's).
[[nodiscard]] bool env_name_is_valid(std::string_view name);

// Set by preforkd for every worker (LISTEN_*, NOTIFY_SOCKET, WATCHDOG_*, PREFORK_*): a
// value from env or an env file would be silently replaced, so both reject it.
[[nodiscard]] bool env_name_is_reserved(std::string_view name);

// One entry of worker.env_file: a leading "-" makes a missing file not an error.
struct EnvFilePath {
  std::string path;
  bool optional = false;
  bool operator==(const EnvFilePath&) const = default;
};
[[nodiscard]] EnvFilePath parse_env_file_path(std::string_view entry);

// Sets or replaces `name` in `vars`, keeping the first place of a name (later files and
// later lines override earlier ones, as systemd's strv_env_replace).
void set_env_var(std::vector<std::pair<std::string, std::string>>& vars, std::string name, std::string value);

}  // namespace preforkd
