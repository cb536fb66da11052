#pragma once
// What a reload must do to go from the running config to a new one.

#include <preforkd/core/config.hpp>

#include <string>
#include <vector>

namespace preforkd {

struct ConfigDiff {
  // Workers must be replaced (rolling): what they run or see changed.
  bool roll_workers = false;
  std::vector<std::string> roll_reasons;  // the keys that changed, e.g. "worker.command"
  bool listeners_changed = false;         // some [[listen]] entry was added, removed or changed
  bool count_changed = false;
  // Keys that only take effect when preforkd restarts; a reload keeps the old value.
  std::vector<std::string> needs_restart;
  // Policy keys (timeouts, backoff, restart mode…) that apply at once.
  bool policy_changed = false;
  // [worker] pool and its keys: the adaptive pool follows them at once, no worker restarts.
  bool pool_changed = false;

  [[nodiscard]] bool empty() const {
    return !roll_workers && !listeners_changed && !count_changed && needs_restart.empty() && !policy_changed && !pool_changed;
  }
};

[[nodiscard]] ConfigDiff diff_configs(const Config& running, const Config& next);

}  // namespace preforkd
