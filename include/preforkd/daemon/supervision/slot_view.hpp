#pragma once
// What the supervisor shows of its slots to those that watch them (status, metrics, the
// balancer, the stall, readiness and fail-fast watches, the recycler, the master's
// systemd notes): plain values copied out of the slots, no timers, pipes, cgroups or
// sockets. Built by Supervisor::view(); observers read it and never the slots themselves,
// and what they want done goes back through Supervisor::submit (worker_input.hpp).

#include <preforkd/core/config.hpp>
#include <preforkd/core/exit_status.hpp>
#include <preforkd/core/worker_lifecycle.hpp>
#include <preforkd/daemon/log/logging.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace preforkd::daemon {

using Clock = std::chrono::steady_clock;

struct LastExit {
  ExitStatus status;
  std::chrono::system_clock::time_point when;
  std::string cause;  // why the master stopped it, when it did so as a fault ("stalled"); else ""
};

// Usage figures for status, written only by the usage sampler (WorkerInput UsageSampled).
// They cover the worker's whole tree (its cgroup, or its descendants from /proc).
struct Usage {
  std::uint64_t rss_bytes = 0;
  unsigned long long cpu_ticks = 0;
  Clock::time_point cpu_sampled{};
  double cpu_percent = 0;
  std::uint64_t pss_bytes = 0;
  std::uint64_t uss_bytes = 0;
  int processes = 0;
  Clock::time_point memory_sampled{};  // when rss/pss/uss were read (smaps_rollup)
};

// One worker run of a slot as it is now.
struct RunView {
  int slot = 0;
  pid_t pid = -1;       // -1: no process now
  pid_t last_pid = -1;  // of its last process once it exited
  WorkerState state = WorkerState::stopped;
  int generation = 0;
  ReadyKind ready = ReadyKind::alive;  // how it becomes ready (its generation's worker.ready)
  Clock::time_point started{};
  std::chrono::system_clock::time_point started_wall{};
  std::string notify_status;  // last STATUS= from the worker
  std::string stall_note;     // set when it was found stalled
  std::string cgroup;         // its cgroup's path; "" without one
  int cpu = -1;               // the CPU it is pinned to, -1: not pinned
  Usage usage;

};

// One slot: its runs and what it has been through.
struct SlotView {
  int slot = 0;
  bool removing = false;                 // scaled away: goes once its runs are gone
  bool parked = false;                   // the adaptive pool keeps no worker here
  std::optional<RunView> current;
  std::optional<RunView> candidate;      // its replacement, starting (rolling update)
  std::vector<RunView> retiring;         // replaced runs, stopping
  int restarts = 0;                      // processes started after the first, for any reason
  int crashes = 0;                       // unplanned exits
  int replacements = 0;                  // planned replacements, of every reason
  std::map<ReplaceReason, int> replaced_for;
  std::optional<LastExit> last_exit;     // the last unplanned exit (crash)

  // Whether any run of the slot has a process now.
  [[nodiscard]] bool has_process() const;
};

// What a message about `run` is about, for the JSON log: its slot, its process (or the
// one that just exited) and its generation.
[[nodiscard]] LogFields log_fields(const RunView& run);

}  // namespace preforkd::daemon
