#pragma once
// Hung-worker detection (worker.stall_timeout), as a pure function: from what the stall
// watch saw of a slot (connections waiting in its accept queues, whether its worker was
// seen waiting for one) to whether the worker is stalled.
// No /proc, no sockets and no clock in here: daemon/watch/stall_watch.cpp samples and acts.
//
// A worker is stalled when, over a window of stall_timeout, its slot's queue was non-empty
// at every sample, its depth never went down from one sample to the next, and the worker
// was never seen waiting for a connection: connections wait and it takes none.

#include <preforkd/core/balance_plan.hpp>
#include <preforkd/core/units.hpp>

namespace preforkd {

// One look at a slot. `at` is a monotonic time (any fixed origin; the daemon uses
// steady_clock's), so tables can give plain numbers.
struct StallSample {
  Duration at{};
  int queued = 0;  // connections in the slot's per-slot accept queues (-1: unknown, as empty)
  Activity activity = Activity::unknown;
};

// What the watch remembers of a slot between samples.
struct StallWindow {
  bool open = false;   // the queue has held connections, untaken, since `since`
  Duration since{};    // the sample that opened the window (or last saw the depth go down)
  int last_queued = 0; // the depth at the previous sample
  bool operator==(const StallWindow&) const = default;
};

struct StallVerdict {
  StallWindow next;
  bool stalled = false;
  int queued = 0;        // with stalled: the depth at the last sample
  Duration waited{};     // with stalled: how long no connection was taken (>= the timeout)
  bool operator==(const StallVerdict&) const = default;
};

// Feeds one sample to a slot's window. `timeout` zero (stall_timeout = "0s") never stalls.
// A verdict of stalled closes the window: the daemon replaces the worker, and the next
// worker's samples start afresh.
[[nodiscard]] StallVerdict judge_stall(const StallWindow& window, const StallSample& sample, Duration timeout);

// How often the watch looks: every slot at `idle` (reading queue depths only), and the
// slots with an open window at `busy` (depth and activity), so that a worker taking
// connections is seen doing so between two samples.
struct StallCadence {
  Duration idle{};
  Duration busy{};
  bool operator==(const StallCadence&) const = default;
};
// A tenth of the timeout between full looks (10 ms to 1 s), a twentieth between looks at
// suspect slots (1 ms to 10 ms).
[[nodiscard]] StallCadence stall_cadence(Duration timeout);

// The shortest stall_timeout the config accepts besides "0s" (off): below it, sampling
// could not tell a worker that takes connections from one that does not.
inline constexpr Duration min_stall_timeout = std::chrono::milliseconds(100);

}  // namespace preforkd
