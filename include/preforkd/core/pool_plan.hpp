#pragma once
// The adaptive pool ([worker] pool = "dynamic" | "ondemand"), as a pure function: from what
// was seen of each slot (a worker or none, waiting or busy, since when it waits, how many
// connections queue on its sockets) to one decision: start workers in slots that have
// none, retire one idle worker, or nothing; with the reason for the log line.
// No /proc, no sockets and no clock in here: daemon/operations/pool.cpp samples and acts.

#include <preforkd/core/balance_plan.hpp>
#include <preforkd/core/config_pool.hpp>
#include <preforkd/core/units.hpp>

#include <optional>
#include <string>
#include <vector>

namespace preforkd {

enum class PoolSlotState {
  empty,     // no worker, by the pool's choice: its sockets are held and steered around
  draining,  // retired by the pool: its worker serves what is queued, then stops
  starting,  // a worker was started (or restarts after a crash) and was not seen waiting yet
  running,   // a ready worker, seen waiting at least once since it started
};

struct PoolSlot {
  int slot = 0;
  PoolSlotState state = PoolSlotState::empty;
  Activity activity = Activity::unknown;  // for running slots
  int queued = 0;                         // connections in the slot's own accept queues
  // Monotonic time since which the worker has been seen waiting at every sample with an
  // empty queue; unset while it is busy or something is queued.
  std::optional<Duration> idle_since;
  bool operator==(const PoolSlot&) const = default;
};

struct PoolInputs {
  PoolMode mode = PoolMode::fixed;
  int min_count = 1;
  int spare = 1;
  Duration idle_timeout = std::chrono::seconds(10);
  int queued_shared = 0;  // connections queued on shared sockets, which every worker takes from
  int step = 0;           // the last growth step while a shortage lasts; 0: none
  Duration now{};
};

struct PoolDecision {
  enum class Kind { none, grow, retire };
  Kind kind = Kind::none;
  std::vector<int> start;  // grow: the slots to start a worker in, ascending
  int retire = -1;         // retire: the slot whose worker stops gracefully
  int step = 0;            // the growth step to pass next time
  int from = 0;            // workers before (starting and running)
  int to = 0;              // and after
  std::string reason;      // "4 connections queued, none waiting"
  bool operator==(const PoolDecision&) const = default;
};

// Growth, in this order:
//  1. a slot without a worker with connections queued on its sockets (they can be taken
//     from nowhere else) gets one, in any mode;
//  2. "static": every slot without a worker gets one (a reload from an adaptive pool);
//  3. fewer workers than min_count: as many as are missing;
//  4. a shortage (connections queued and no worker waiting, or, dynamic, fewer waiting
//     than spare), while no worker is starting: 1, then 2, 4 … (the step doubles while
//     the shortage lasts, and at least what spare misses), lowest free slots first.
// Otherwise, with nothing starting or draining: the worker idle longest, for at least
// idle_timeout, above min_count (and, dynamic, leaving spare waiting) is retired: one at
// a time, never a busy one, never one with queued connections.
[[nodiscard]] PoolDecision plan_pool(const std::vector<PoolSlot>& slots, const PoolInputs& in);

// "pool: 3 -> 5 workers: 4 connections queued, none waiting".
[[nodiscard]] std::string pool_log_line(const PoolDecision& d);

}  // namespace preforkd
