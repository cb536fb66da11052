// Fail fast: when a listener stops waiting for a ready worker and refuses its connections.

#include <preforkd/core/fail_fast_plan.hpp>

#include <algorithm>

namespace preforkd {

FailFastStep fail_fast_step(const FailFastState& state, bool any_ready, Duration now, Duration after) {
  FailFastStep step;
  step.next = state;
  FailFastState& next = step.next;
  if (any_ready) {
    next.none_ready_since.reset();
  } else if (!next.none_ready_since) {
    next.none_ready_since = now;
  }
  const bool off = after <= Duration::zero();
  const bool should_refuse = !off && next.none_ready_since && now - *next.none_ready_since >= after;
  if (should_refuse && !state.refusing) {
    next.refusing = true;
    next.refusing_since = now;
    next.refused = 0;
    step.change = FailFastChange::started;
  } else if (!should_refuse && state.refusing) {
    next.refusing = false;
    step.change = FailFastChange::ended;
    step.refused = state.refused;
    step.refused_for = now - state.refusing_since;
    next.refused = 0;
    next.refusing_since = Duration::zero();
  }
  if (!off && !next.refusing && next.none_ready_since) step.check_at = *next.none_ready_since + after;
  return step;
}

std::vector<bool> sockets_to_refuse_on(bool refusing, const std::vector<std::vector<int>>& holders,
                                       const std::vector<bool>& has_process) {
  std::vector<bool> out(holders.size(), false);
  if (!refusing) return out;
  for (std::size_t i = 0; i < holders.size(); ++i) {
    out[i] = std::none_of(holders[i].begin(), holders[i].end(), [&](int slot) {
      // A slot the caller knows nothing of has no process to race with.
      return slot >= 0 && static_cast<std::size_t>(slot) < has_process.size() && has_process[static_cast<std::size_t>(slot)];
    });
  }
  return out;
}

}  // namespace preforkd
