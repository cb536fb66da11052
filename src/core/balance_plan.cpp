// Balanced accept: which live slots get new connections, and when to sample again.

#include <preforkd/core/balance_plan.hpp>

#include <algorithm>
#include <climits>

namespace preforkd {

const char* to_string(Activity a) {
  switch (a) {
    case Activity::unknown:
      return "unknown";
    case Activity::waiting:
      return "waiting";
    case Activity::busy:
      return "busy";
  }
  return "unknown";
}

BalancePlan plan_balance(const std::vector<int>& live_slots, const std::vector<SlotSample>& samples,
                         const std::vector<int>& previous, const BalanceTuning& tuning, bool pack) {
  std::vector<int> live = live_slots;
  std::sort(live.begin(), live.end());
  live.erase(std::unique(live.begin(), live.end()), live.end());

  std::vector<SlotSample> seen;
  seen.reserve(live.size());
  for (int slot : live) {
    auto it = std::find_if(samples.begin(), samples.end(), [slot](const SlotSample& s) { return s.slot == slot; });
    SlotSample s = it != samples.end() ? *it : SlotSample{slot, Activity::unknown, 0};
    s.queued = std::max(s.queued, 0);  // -1: the depth is unknown (a unix socket)
    seen.push_back(s);
  }
  const auto waiting = [](const SlotSample& s) { return s.activity == Activity::waiting; };
  // The slots of `seen` that pass `keep` and have the shortest queue among those.
  const auto shortest = [&](auto keep) {
    int least = INT_MAX;
    for (const SlotSample& s : seen)
      if (keep(s)) least = std::min(least, s.queued);
    std::vector<int> out;
    for (const SlotSample& s : seen)
      if (keep(s) && s.queued == least) out.push_back(s.slot);
    return out;
  };

  BalancePlan plan;
  const bool any_waiting = std::any_of(seen.begin(), seen.end(), waiting);
  if (any_waiting) {
    plan.steer_to = shortest(waiting);  // 1 and 2: an empty queue is the shortest there is
    if (pack) plan.steer_to.resize(1);  // ascending: the lowest
  } else {
    // A worker that was waiting a moment ago and now shows one queued connection is most
    // likely just taking it (woken, not yet returned from accept): it stays preferred over
    // a worker with an empty queue that has been busy for longer (maybe stopped, or deep
    // in a long request). Only a longer queue than that moves the choice elsewhere.
    int least = INT_MAX;
    for (const SlotSample& s : seen) least = std::min(least, s.queued);
    const auto recent = [&](const SlotSample& s) {
      return s.queued <= least + 1 && std::find(previous.begin(), previous.end(), s.slot) != previous.end();
    };
    plan.steer_to = shortest(recent);
    if (plan.steer_to.empty()) plan.steer_to = shortest([](const SlotSample&) { return true; });
  }

  // Idle (or nothing live to watch): look rarely. Otherwise a worker may free up or take
  // its last waiting connection any moment, so look again soon. Unknown counts as idle:
  // a worker /proc cannot see must not keep the sampler fast.
  const bool all_idle = std::all_of(seen.begin(), seen.end(), [](const SlotSample& s) {
    return s.activity != Activity::busy && s.queued == 0;
  });
  plan.next_sample = all_idle ? tuning.slow : tuning.fast;
  // Packed on one of several waiting workers: a burst would queue behind it until the
  // next sample, so that is soon.
  const auto n_waiting = std::count_if(seen.begin(), seen.end(), waiting);
  if (pack && all_idle && n_waiting > 1) plan.next_sample = std::min(plan.next_sample, tuning.packed);
  return plan;
}

}  // namespace preforkd
