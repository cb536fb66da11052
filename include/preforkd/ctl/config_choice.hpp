#pragma once
// Which config file preforkctl uses without --socket or --config: $PREFORKD_CONFIG, else
// the only *.toml in /etc/preforkd (the directory of preforkd@NAME's NAME.toml), else an
// error that lists what it found and how to choose.

#include <optional>
#include <string>
#include <vector>

namespace preforkd::ctl {

// Where preforkd@.service's configs live; $PREFORKD_CONFIG_DIR replaces it (tests, other layouts).
inline constexpr const char* default_config_dir = "/etc/preforkd";

struct ConfigChoice {
  std::string path;   // the config file to use, when error is empty
  std::string error;  // what was found and how to choose (a usage error)
};

// Pure: `env_config` is $PREFORKD_CONFIG (nullptr or "" when unset), `tomls` the *.toml
// names found in `dir` (nullopt when `dir` cannot be read).
[[nodiscard]] ConfigChoice choose_config(const char* env_config, const std::string& dir,
                                         const std::optional<std::vector<std::string>>& tomls);

// The names of the *.toml files in `dir` (hidden ones skipped), sorted; nullopt when `dir`
// cannot be listed.
[[nodiscard]] std::optional<std::vector<std::string>> toml_files_in(const std::string& dir);

}  // namespace preforkd::ctl
