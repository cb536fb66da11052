#pragma once
// Scaling as pure decisions, beside the rolling plan: from the slots' facts and the worker
// count asked for to what happens to each slot. No runs, no sockets, no clock in here: the
// supervisor (supervisor_scale.cpp) gathers the facts and carries the actions out.
//
// New slots go at the end and removed slots from the end (so the reuseport group keeps
// its order). A removed slot is steered away from at once and serves what is queued on
// its sockets until its drain deadline (or until nothing is queued, or its worker is not
// ready); then its worker is asked to stop, and once the slot has no process left and no
// event waits for it, it goes. A scale sets a target: slots still being removed are kept
// again when the count grows back (their worker keeps serving, is taken back while it
// stops, or starts again). A slot the adaptive pool parks drains and stops the same way,
// but stays.

#include <preforkd/core/units.hpp>
#include <preforkd/core/worker_lifecycle.hpp>

#include <vector>

namespace preforkd {

// What the plan needs to know of one slot, as it is now.
struct ScaleSlotFacts {
  bool removing = false;       // scaled away
  bool draining = false;       // removing (or parked by the adaptive pool), serving its queue until `drain_until`
  Duration drain_until{};      // on the same clock as `now`
  WorkerState state = WorkerState::stopped;  // of its current run (stopped: none)
  bool queued = false;         // connections wait on its sockets
  bool has_process = false;    // a run of it (current or stopping) has a process
  bool event_waiting = false;  // an event for its current run waits in the executor's queue
  bool operator==(const ScaleSlotFacts&) const = default;
};

struct ScaleAction {
  enum class Kind {
    add,               // a new slot `slot` at the end: its worker starts
    keep,              // a slot being removed stays, its worker serving as it is
    take_back,         // a slot being removed stays; its stopping worker is replaced (scale)
    start_again,       // a slot being removed stays; its worker had no process: it starts (`counted`: a replacement)
    drain,             // removing: steered away from, serves its queue until `until`
    stop,              // its drain is over: its worker is asked to stop
    remove,            // it has no process left: the slot goes (always the last one)
  };
  Kind kind = Kind::add;
  int slot = -1;
  Duration until{};
  bool counted = false;
  bool operator==(const ScaleAction&) const = default;
};

// What a scale from `target` (the count asked for before) to `count` does, in order; the
// slots present may be more than `target` (some still being removed).
[[nodiscard]] std::vector<ScaleAction> plan_scale(const std::vector<ScaleSlotFacts>& slots, int target, int count,
                                                  Duration now, Duration drain_max);

struct ScaleSettle {
  std::vector<ScaleAction> actions;  // stop and remove
  bool poll_again = false;           // a slot still drains its queue: look again soon
};

// After the executor's queue ran dry: which removed slots stop serving, and which go.
[[nodiscard]] ScaleSettle settle_scale(const std::vector<ScaleSlotFacts>& slots, Duration now);

}  // namespace preforkd
