#include <preforkd/ctl/socket_lookup.hpp>

#include <toml++/toml.h>

#include <sys/stat.h>

namespace preforkd::ctl {
namespace {

// [preforkd] control_socket from a file whose TOML still parses; empty when it does not, or
// when the key is missing or not an absolute path (the daemon would then use the default).
std::string control_socket_key(const std::string& config_path) {
  try {
    const toml::table file = toml::parse_file(config_path);
    const auto key = file["preforkd"]["control_socket"].value<std::string>();
    if (key && key->starts_with('/')) return *key;
  } catch (const toml::parse_error&) {
  }
  return {};
}

std::string first_error(const std::vector<ConfigError>& errors) {
  std::string text = errors.front().to_string();
  if (errors.size() > 1) text += " and " + std::to_string(errors.size() - 1) + " more";
  return text;
}

}  // namespace

SocketLookup find_control_socket(const std::string& config_path, const EnvLookup& env, uid_t euid) {
  const ConfigResult loaded = load_config(config_path, 1);
  if (loaded.errors.empty()) return {control_socket_candidates(*loaded.config, env, euid), {}};

  Config guess;
  guess.path = config_path;
  guess.daemon.control_socket = control_socket_key(config_path);
  SocketLookup out{control_socket_candidates(guess, env, euid), {}};
  out.fallback = "'" + config_path + "' has errors (" + first_error(loaded.errors) + "); using " +
                 (guess.daemon.control_socket.empty() ? "the default control socket for that file"
                                                      : "its control_socket key");
  return out;
}

std::string pick_existing(const std::vector<std::string>& candidates) {
  for (const auto& candidate : candidates) {
    struct stat st {};
    if (::lstat(candidate.c_str(), &st) == 0) return candidate;
  }
  return candidates.front();
}

}  // namespace preforkd::ctl
