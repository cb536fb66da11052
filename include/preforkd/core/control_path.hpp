#pragma once
// Where the control socket lives when the config does not say: one rule for the master
// and preforkctl. Pure: the environment and the effective uid come in as arguments.
//
//   $RUNTIME_DIRECTORY/<stem>.sock           under systemd (RuntimeDirectory=; first entry)
//   /run/preforkd/<stem>.sock                as root
//   $XDG_RUNTIME_DIR/preforkd/<stem>.sock    as another user with a runtime directory
//   /tmp/preforkd-<uid>/<stem>.sock          otherwise
//
// <stem> is the config file's name without directory and extension ("app" for
// /etc/preforkd/app.toml), so several masters on one machine do not collide, and a unit
// with RuntimeDirectory=preforkd puts the socket where root's preforkctl looks by default.

#include <preforkd/core/config.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace preforkd {

// Looks up an environment variable: nullptr when unset. std::getenv fits.
using EnvLookup = std::function<const char*(const char*)>;

// "app" for "/etc/preforkd/app.toml"; "preforkd" when nothing is left.
[[nodiscard]] std::string config_stem(std::string_view config_path);

[[nodiscard]] std::string default_control_socket(std::string_view config_path, const EnvLookup& env, uid_t euid);

// The config's control_socket (validated absolute by the config), or the default.
[[nodiscard]] std::string control_socket_path(const Config& config, const EnvLookup& env, uid_t euid);

// For preforkctl: where to look, best first. A user who is in control_group but is not the
// master's user computes a different default than the master did, so root's default is
// tried next. Contains one path when the config names its socket.
[[nodiscard]] std::vector<std::string> control_socket_candidates(const Config& config, const EnvLookup& env, uid_t euid);

}  // namespace preforkd
