#include <preforkd/core/scale_plan.hpp>

#include <algorithm>

namespace preforkd {

std::vector<ScaleAction> plan_scale(const std::vector<ScaleSlotFacts>& slots, int target, int count, Duration now,
                                    Duration drain_max) {
  std::vector<ScaleAction> out;
  const int present = static_cast<int>(slots.size());
  if (count > target) {
    // Slots still being removed are kept: their worker stays, or starts again.
    for (int i = target; i < std::min(count, present); ++i) {
      const ScaleSlotFacts& s = slots[static_cast<std::size_t>(i)];
      ScaleAction a{ScaleAction::Kind::keep, i, {}, false};
      if (s.state == WorkerState::stopping) {
        a.kind = ScaleAction::Kind::take_back;
      } else if (!has_process(s.state)) {
        // Its process was stopped by the scale down; a new one replaces it.
        a.kind = ScaleAction::Kind::start_again;
        a.counted = s.state == WorkerState::stopped;
      }
      out.push_back(a);
    }
    for (int i = present; i < count; ++i) out.push_back({ScaleAction::Kind::add, i, {}, false});
    return out;
  }
  for (int i = count; i < target && i < present; ++i) out.push_back({ScaleAction::Kind::drain, i, now + drain_max, false});
  return out;
}

ScaleSettle settle_scale(const std::vector<ScaleSlotFacts>& slots, Duration now) {
  ScaleSettle out;
  std::vector<ScaleSlotFacts> after = slots;
  for (std::size_t i = 0; i < after.size(); ++i) {
    ScaleSlotFacts& s = after[i];
    if (!s.draining) continue;
    // Served while something is queued and a ready worker takes it, until the deadline.
    if (s.queued && s.state == WorkerState::ready && now < s.drain_until) {
      out.poll_again = true;
      continue;
    }
    s.draining = false;
    ScaleAction stop{ScaleAction::Kind::stop, static_cast<int>(i), {}, false};
    out.actions.push_back(stop);
    // The stop is an event for its run (none for a run already stopped).
    if (s.state != WorkerState::stopped) s.event_waiting = true;
  }
  // Slots go from the end only, once their runs have no process left and nothing waits
  // for them.
  for (std::size_t n = after.size(); n > 0; --n) {
    const ScaleSlotFacts& last = after[n - 1];
    if (!last.removing || last.draining || last.has_process || last.event_waiting) break;
    out.actions.push_back({ScaleAction::Kind::remove, static_cast<int>(n - 1), {}, false});
  }
  return out;
}

}  // namespace preforkd
