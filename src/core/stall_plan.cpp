// Hung-worker detection: whether a slot's worker takes the connections queued for it.

#include <preforkd/core/stall_plan.hpp>

#include <algorithm>

namespace preforkd {

StallVerdict judge_stall(const StallWindow& window, const StallSample& sample, Duration timeout) {
  StallVerdict v;
  const int queued = std::max(sample.queued, 0);
  // Nothing waits, or the worker waits for a connection (it will take the next one): the
  // worker is not holding anything up.
  if (timeout <= Duration::zero() || queued == 0 || sample.activity == Activity::waiting) return v;
  v.next.open = true;
  v.next.last_queued = queued;
  // A shorter queue than at the last sample: the worker took a connection, so the clock
  // starts again here. A longer or equal one: still nothing taken (as far as can be seen).
  const bool took_one = window.open && queued < window.last_queued;
  v.next.since = window.open && !took_one ? window.since : sample.at;
  const Duration waited = sample.at - v.next.since;
  if (waited < timeout) return v;
  v.stalled = true;
  v.queued = queued;
  v.waited = waited;
  v.next = StallWindow{};
  return v;
}

StallCadence stall_cadence(Duration timeout) {
  using std::chrono::milliseconds;
  return StallCadence{std::clamp<Duration>(timeout / 10, milliseconds(10), std::chrono::seconds(1)),
                      std::clamp<Duration>(timeout / 20, milliseconds(1), milliseconds(10))};
}

}  // namespace preforkd
