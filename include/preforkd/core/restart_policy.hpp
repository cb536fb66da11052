#pragma once
// What to do when a worker exits on its own, and how long to wait before the next try.

#include <preforkd/core/config.hpp>
#include <preforkd/core/exit_status.hpp>
#include <preforkd/core/units.hpp>

#include <vector>

namespace preforkd {

struct RestartPolicy {
  RestartMode mode = RestartMode::always;
  Duration backoff_initial = std::chrono::milliseconds(100);
  Duration backoff_max = std::chrono::seconds(30);
  std::vector<int> fatal_exit_codes;
  // A worker that was ready and stayed up this long was healthy: its exit starts
  // the crash count afresh, so its replacement starts at once.
  Duration healthy_after = std::chrono::seconds(1);

  [[nodiscard]] static RestartPolicy from(const WorkerConfig& worker);
};

enum class ExitVerdict {
  respawn,  // start a replacement (now or after a backoff)
  fail,     // a fatal exit code, or a failure under restart = "never": the slot stays failed
  stop,     // a clean exit that the restart mode does not replace
};

[[nodiscard]] ExitVerdict judge_exit(const RestartPolicy& policy, const ExitStatus& status);

// The crash count after an unrequested exit: 1 when the worker had been healthy, else one more.
[[nodiscard]] int next_failure_count(const RestartPolicy& policy, int failures, bool was_ready, Duration uptime);

// Delay before starting the replacement after `failures` consecutive crashes:
// 0 for the first, then backoff_initial doubling up to backoff_max, with jitter
// (`jitter` in [0,1) spreads the delay over [0.8, 1.2) of its base, within the bounds).
[[nodiscard]] Duration backoff_delay(const RestartPolicy& policy, int failures, double jitter);

}  // namespace preforkd
