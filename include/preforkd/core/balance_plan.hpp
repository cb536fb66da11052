#pragma once
// Balanced accept, as a pure function: from what the sampler saw of each slot (is its
// worker waiting for a connection, how many connections wait in its accept queue) to
// the slots new connections are steered to, and when to look again.
// No /proc, no sockets and no clock in here: the balancer (daemon/balance/balancer.cpp) samples
// and steers; this decides.

#include <preforkd/core/units.hpp>

#include <vector>

namespace preforkd {

// What a slot's worker was last seen doing.
enum class Activity {
  unknown,  // not sampled yet, or /proc could not tell
  waiting,  // some leaf process of its tree is blocked in accept or an idle event loop
  busy,     // every leaf process is running, stopped or blocked in something else
};
[[nodiscard]] const char* to_string(Activity a);

struct SlotSample {
  int slot = 0;
  Activity activity = Activity::unknown;
  int queued = 0;  // connections in the slot's accept queues (sum over its listeners)
  bool operator==(const SlotSample&) const = default;
};

struct BalanceTuning {
  Duration fast = std::chrono::milliseconds(1);  // while any live worker is busy or a queue is non-empty
  Duration slow = std::chrono::milliseconds(200);  // while every live worker waits on an empty queue
  // Packing, while every live worker waits: a burst queues behind the one steered to
  // for at most this long before the next sample spreads it to the others.
  Duration packed = std::chrono::milliseconds(10);
};

struct BalancePlan {
  std::vector<int> steer_to;  // ascending; a subset of the live slots (empty when none is live)
  Duration next_sample{};
  bool operator==(const BalancePlan&) const = default;
};

// `live` are the slots the supervisor would steer to (ready, or starting while none is
// ready), `samples` what was seen of them (a live slot without a sample counts as
// unknown), `previous` the set this returned last time. New connections go to:
//  1. the live slots whose worker waits with an empty queue; else
//  2. the waiting slots with the shortest queue (they take it as soon as they wake); else
//  3. (every worker busy) the slots of `previous` whose queue is at most one longer than
//     the shortest, shortest first: they were waiting at the last sample, so they have
//     been busy for the shortest time and are the likeliest to free up first (a worker
//     stuck in a 3 s request, or stopped, does not get the next connection just because
//     the others are busy too, nor because one of them is just taking its connection);
//     when there is none, the live slots with the shortest queue.
// `pack` (an adaptive pool): of the slots of 1 and 2, only the lowest, so the load packs
// on as few workers as serve it and the workers above it wait and retire.
[[nodiscard]] BalancePlan plan_balance(const std::vector<int>& live, const std::vector<SlotSample>& samples,
                                       const std::vector<int>& previous, const BalanceTuning& tuning,
                                       bool pack = false);

}  // namespace preforkd
