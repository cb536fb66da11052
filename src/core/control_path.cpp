#include <preforkd/core/control_path.hpp>

#include <algorithm>

namespace preforkd {
namespace {

// A usable directory from the environment: set, absolute, and the first entry when it is a
// ':'-separated list (systemd passes several RuntimeDirectory= entries that way).
std::string env_dir(const EnvLookup& env, const char* name) {
  const char* value = env ? env(name) : nullptr;
  if (value == nullptr || value[0] != '/') return {};
  std::string dir(value);
  if (const auto colon = dir.find(':'); colon != std::string::npos) dir.resize(colon);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace

std::string config_stem(std::string_view config_path) {
  while (!config_path.empty() && config_path.back() == '/') config_path.remove_suffix(1);
  if (const auto slash = config_path.rfind('/'); slash != std::string_view::npos) {
    config_path.remove_prefix(slash + 1);
  }
  // ".hidden.toml" keeps its leading dot; only the last extension goes.
  if (const auto dot = config_path.rfind('.'); dot != std::string_view::npos && dot > 0) {
    config_path = config_path.substr(0, dot);
  }
  if (config_path.empty() || config_path == "." || config_path == "..") return "preforkd";
  return std::string(config_path);
}

std::string default_control_socket(std::string_view config_path, const EnvLookup& env, uid_t euid) {
  const std::string file = config_stem(config_path) + ".sock";
  if (const std::string runtime = env_dir(env, "RUNTIME_DIRECTORY"); !runtime.empty()) return runtime + "/" + file;
  if (euid == 0) return "/run/preforkd/" + file;
  if (const std::string xdg = env_dir(env, "XDG_RUNTIME_DIR"); !xdg.empty()) return xdg + "/preforkd/" + file;
  return "/tmp/preforkd-" + std::to_string(euid) + "/" + file;
}

std::string control_socket_path(const Config& config, const EnvLookup& env, uid_t euid) {
  if (!config.daemon.control_socket.empty()) return config.daemon.control_socket;
  return default_control_socket(config.path, env, euid);
}

std::vector<std::string> control_socket_candidates(const Config& config, const EnvLookup& env, uid_t euid) {
  std::vector<std::string> paths{control_socket_path(config, env, euid)};
  if (!config.daemon.control_socket.empty()) return paths;
  const std::string as_root = default_control_socket(config.path, EnvLookup{}, 0);
  if (std::find(paths.begin(), paths.end(), as_root) == paths.end()) paths.push_back(as_root);
  return paths;
}

}  // namespace preforkd
