#include <preforkd/core/restart_policy.hpp>

#include <algorithm>
#include <cmath>

namespace preforkd {

RestartPolicy RestartPolicy::from(const WorkerConfig& worker) {
  RestartPolicy p;
  p.mode = worker.restart;
  p.backoff_initial = worker.backoff_initial;
  p.backoff_max = worker.backoff_max;
  p.fatal_exit_codes = worker.fatal_exit_codes;
  return p;
}

ExitVerdict judge_exit(const RestartPolicy& policy, const ExitStatus& status) {
  if (status.kind == ExitStatus::Kind::exited &&
      std::ranges::find(policy.fatal_exit_codes, status.code) != policy.fatal_exit_codes.end())
    return ExitVerdict::fail;
  switch (policy.mode) {
    case RestartMode::always:
      return ExitVerdict::respawn;
    case RestartMode::on_failure:
      return status.success() ? ExitVerdict::stop : ExitVerdict::respawn;
    case RestartMode::never:
      return status.success() ? ExitVerdict::stop : ExitVerdict::fail;
  }
  return ExitVerdict::respawn;
}

RestartDecision after_crash(const RestartPolicy& policy, int failures, bool was_ready, Duration uptime, double jitter) {
  // Served, and outside the throttle window: capacity first, replace it now.
  if (was_ready && uptime >= policy.backoff_initial) return {1, Duration::zero()};
  // Never ready, or died inside the window: one more in a row. From the second on the
  // delay is at least backoff_initial, so it also covers the rest of the window.
  const int count = failures + 1;
  return {count, backoff_delay(policy, count, jitter)};
}

Duration backoff_delay(const RestartPolicy& policy, int failures, double jitter) {
  if (failures <= 1) return Duration::zero();
  // Doubling from backoff_initial; the exponent is capped so the shift cannot overflow.
  const int doublings = std::min(failures - 2, 40);
  const double base = std::min(static_cast<double>(policy.backoff_initial.count()) * std::ldexp(1.0, doublings),
                               static_cast<double>(policy.backoff_max.count()));
  const double jittered = base * (0.8 + 0.4 * std::clamp(jitter, 0.0, 1.0));
  const double bounded = std::clamp(jittered, static_cast<double>(policy.backoff_initial.count()),
                                    static_cast<double>(policy.backoff_max.count()));
  return Duration(static_cast<Duration::rep>(std::llround(bounded)));
}

}  // namespace preforkd
