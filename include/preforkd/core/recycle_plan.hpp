#pragma once
// Recycling (worker.max_memory, worker.max_lifetime) as a pure function: from what the
// recycler saw of every slot (its worker, whether it may be recycled now, its memory at
// this sample) and what it remembers of each worker, to the slots to recycle now and why.
// No /proc, no clock and no random source in here: daemon/operations/recycler.cpp samples, draws the
// lifetime jitter and carries the orders out as one-slot rolling updates.
//
// Memory: a worker whose tree's USS (private memory: what recycling it frees) stays above
// max_memory for recycle_memory_samples samples in a row is recycled. Not PSS: PSS also
// holds a share of pages the workers map together, which a replacement maps again, and
// that share grows by itself when a sibling exits (fewer sharers), so a limit on it would
// recycle workers that did not grow and free nothing. Lifetime: a worker is recycled once it has run for
// max_lifetime times a factor drawn from [0.9, 1.1) when its run starts, so that workers
// started together are not recycled together. At most max_surge slots are recycled at
// once, memory before lifetime; nothing starts while another rolling update runs, and a
// slot whose recycle failed is left alone for recycle_retry_after.

#include <preforkd/core/units.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace preforkd {

// Samples in a row above max_memory before a recycle: one spike (a big request, a GC
// cycle) is not growth. Fixed; memory_sample_interval sets how long that takes.
inline constexpr int recycle_memory_samples = 3;
// After a recycle failed (its replacement never became ready), the slot's worker keeps
// serving and is not tried again for this long.
inline constexpr Duration recycle_retry_after = std::chrono::seconds(30);
// The jitter of max_lifetime: each run lives max_lifetime * [1 - j, 1 + j).
inline constexpr double recycle_lifetime_jitter = 0.10;

// The bounds of the [worker] keys, checked by the config (config_worker.cpp).
inline constexpr std::uint64_t min_max_memory = std::uint64_t{1} << 20;  // 1 MiB
inline constexpr std::uint64_t max_max_memory = std::uint64_t{1} << 40;  // 1 TiB
inline constexpr Duration min_max_lifetime = std::chrono::seconds(1);
inline constexpr Duration max_max_lifetime = std::chrono::hours(24 * 365);
inline constexpr Duration min_memory_sample_interval = std::chrono::milliseconds(250);
inline constexpr Duration max_memory_sample_interval = std::chrono::hours(1);

enum class RecycleCause { memory, lifetime };

struct RecycleLimits {
  std::uint64_t max_memory = 0;  // USS bytes of a worker's tree; 0: off
  Duration max_lifetime{};       // 0: off
  int max_surge = 1;             // recycles at once
  bool operator==(const RecycleLimits&) const = default;
};

// What the recycler saw of one slot at this look. Times are monotonic, from any origin.
struct RecycleView {
  pid_t pid = -1;         // the slot's current worker; -1: none
  Duration started{};     // when that worker's process started
  bool eligible = false;  // ready, alone in its slot (no candidate, nothing stopping, not removed)
  std::optional<std::uint64_t> uss;  // its tree's USS, when sampled at this look
  double jitter_draw = 0.5;          // a uniform draw in [0, 1), used when the worker is new
};

// What the recycler remembers of a slot's worker between looks.
struct RecycleWatch {
  pid_t pid = -1;              // the worker this is about
  int above = 0;               // memory samples in a row above max_memory
  std::uint64_t last_uss = 0;  // the latest sample
  Duration lifetime_ends{};    // when its lifetime is up (monotonic); zero: no max_lifetime
  Duration drawn_for{};        // the max_lifetime lifetime_ends was drawn for (a reload may change it)
  Duration not_before{};       // after a failed recycle: no new try before this
  bool operator==(const RecycleWatch&) const = default;
};

struct RecycleOrder {
  int slot = -1;
  pid_t pid = -1;
  RecycleCause cause = RecycleCause::memory;
  std::uint64_t uss = 0;    // memory: the last sample
  std::uint64_t limit = 0;  // memory: max_memory
  bool operator==(const RecycleOrder&) const = default;
};

struct RecycleDecision {
  std::vector<RecycleWatch> next;     // one per slot of the input
  std::vector<RecycleOrder> recycle;  // at most max_surge, none while `busy`
  bool operator==(const RecycleDecision&) const = default;
};

// One look at every slot. `busy`: a rolling update (reload, restart, scale, a recycle) or a
// stop is in progress, so nothing starts now (memory samples still count). Watches of
// slots beyond the input are dropped; a new worker in a slot starts a fresh watch.
[[nodiscard]] RecycleDecision plan_recycles(const std::vector<RecycleWatch>& watches,
                                            const std::vector<RecycleView>& slots, Duration now, bool busy,
                                            const RecycleLimits& limits);

// A run's lifetime with its jitter: max_lifetime * (1 - j + 2 j * draw), draw in [0, 1).
[[nodiscard]] Duration jittered_lifetime(Duration max_lifetime, double draw);

// The slot's watch after its recycle failed at `now`: not tried again before
// now + recycle_retry_after, and its memory count starts again.
[[nodiscard]] RecycleWatch after_failed_recycle(RecycleWatch watch, Duration now);

// The reason as logged and shown by status: "memory 612 MiB > 512 MiB" or "lifetime".
[[nodiscard]] std::string recycle_text(const RecycleOrder& order);

}  // namespace preforkd
