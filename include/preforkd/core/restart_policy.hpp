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

  [[nodiscard]] static RestartPolicy from(const WorkerConfig& worker);
};

enum class ExitVerdict {
  respawn,  // start a replacement (now or after a backoff)
  fail,     // a fatal exit code, or a failure under restart = "never": the slot stays failed
  stop,     // a clean exit that the restart mode does not replace
};

[[nodiscard]] ExitVerdict judge_exit(const RestartPolicy& policy, const ExitStatus& status);

// What follows an unplanned exit (or a failed start) that is restarted: the crash count
// ("crashes in a row") and the delay before the replacement starts.
struct RestartDecision {
  int failures = 0;
  Duration delay{};
  bool operator==(const RestartDecision&) const = default;
};

// The restart rule, which keeps capacity through crash churn without a tight loop:
//  - a worker that was ready and ran at least backoff_initial (the throttle window)
//    is replaced at once, and the crash count starts afresh at 1;
//  - a worker that died before it was ready, or inside the throttle window, adds one
//    to the count, and waits backoff_delay(count): nothing for the first crash of a
//    run, then backoff_initial doubling up to backoff_max.
// So a slot restarts at most once per backoff_initial (after the first restart of a
// run, which is immediate), and only workers that cannot stay up back off.
// `uptime`: since this process started; `jitter`: a draw in [0,1).
[[nodiscard]] RestartDecision after_crash(const RestartPolicy& policy, int failures, bool was_ready, Duration uptime,
                                          double jitter);

// Delay before starting the replacement after `failures` consecutive crashes:
// 0 for the first, then backoff_initial doubling up to backoff_max, with jitter
// (`jitter` in [0,1) spreads the delay over [0.8, 1.2) of its base, within the bounds).
[[nodiscard]] Duration backoff_delay(const RestartPolicy& policy, int failures, double jitter);

}  // namespace preforkd
