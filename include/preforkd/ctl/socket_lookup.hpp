#pragma once
// Where preforkctl --config FILE finds the daemon. The socket path is all it needs from
// FILE, so a FILE that has just been broken (the moment an operator most needs `status`)
// still leads to the daemon: its control_socket key if that can still be read, else the
// default path for FILE; `fallback` then says why the rest of FILE was not used.

#include <preforkd/core/control_path.hpp>

#include <string>
#include <sys/types.h>
#include <vector>

namespace preforkd::ctl {

struct SocketLookup {
  std::vector<std::string> candidates;  // best first; never empty
  // Empty when FILE is valid; else why it was not used and where the path comes from:
  // "'app.toml' has errors (app.toml:3:9: worker.count: …); using its control_socket key".
  std::string fallback;
};

[[nodiscard]] SocketLookup find_control_socket(const std::string& config_path, const EnvLookup& env, uid_t euid);

// The first candidate whose file exists, else the first one.
[[nodiscard]] std::string pick_existing(const std::vector<std::string>& candidates);

}  // namespace preforkd::ctl
