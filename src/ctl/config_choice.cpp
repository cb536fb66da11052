#include <algorithm>
#include <filesystem>
#include <preforkd/ctl/config_choice.hpp>

namespace preforkd::ctl {

namespace {

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

ConfigChoice choose_config(const char* env_config, const std::string& dir,
                           const std::optional<std::vector<std::string>>& tomls) {
  if (env_config != nullptr && *env_config != '\0') return {env_config, {}};
  const std::string prefix = dir.ends_with('/') ? dir : dir + "/";
  if (tomls && tomls->size() == 1) return {prefix + tomls->front(), {}};
  const std::string how = "give --config FILE, --socket PATH or set PREFORKD_CONFIG=FILE";
  if (!tomls || tomls->empty()) {
    return {{}, "no --config or --socket, PREFORKD_CONFIG is not set and '" + dir + "' has no *.toml; " + how};
  }
  return {{},
          "no --config or --socket, PREFORKD_CONFIG is not set and '" + dir + "' has " + std::to_string(tomls->size()) +
              " configs (" + join_names(*tomls) + "); choose one: --config " + prefix + tomls->front() +
              " or PREFORKD_CONFIG=" + prefix + tomls->front()};
}

std::optional<std::vector<std::string>> toml_files_in(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return std::nullopt;
  std::vector<std::string> names;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with('.') || !name.ends_with(".toml")) continue;
    std::error_code type_ec;
    if (!entry.is_regular_file(type_ec)) continue;  // follows symlinks, as the shell's glob would
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace preforkd::ctl
