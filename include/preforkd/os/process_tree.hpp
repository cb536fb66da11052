#pragma once
// A worker is its whole tree: the worker process and everything it forked, found from
// /proc (children of children, /proc/<pid>/task/*/children) or, with a worker cgroup, from
// its cgroup.procs. What the tree uses (memory from smaps_rollup, CPU time) is summed here.

#include <preforkd/os/cgroup.hpp>

#include <cstdint>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

// What a worker's tree uses now: memory in bytes summed over its processes, CPU time in
// clock ticks (ticks_per_second()), and how many processes it has.
//   rss: resident pages, shared ones counted in every process that maps them;
//   pss: each shared page divided among the processes that map it (sums to the real total);
//   uss: pages private to one process (Private_Clean + Private_Dirty): what a recycle frees.
struct TreeUsage {
  std::uint64_t rss = 0;
  std::uint64_t pss = 0;
  std::uint64_t uss = 0;
  std::uint64_t cpu_ticks = 0;
  int processes = 0;
};

// One process for as long as it lives: a pid with its start time, so that a pid reused by
// a later process is never mistaken for it.
struct ProcessId {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  bool operator==(const ProcessId&) const = default;
};

// Appends the children of every thread of `pid` (a thread that forked is their parent),
// from /proc/<pid>/task/*/children.
void append_children(pid_t pid, std::vector<pid_t>& out);
// The descendants of `top` (not `top` itself), parents before their children. A process
// whose parent exited has been re-parented (to the master, a subreaper) and is no longer
// found from `top`.
[[nodiscard]] std::vector<pid_t> descendants(pid_t top);
// The same with their start times.
[[nodiscard]] std::vector<ProcessId> snapshot_descendants(pid_t top);
// SIGKILL to each process of `processes` that is still the same process. Returns how many
// were signalled.
int kill_processes(const std::vector<ProcessId>& processes);

// The memory and CPU of `pids` (smaps_rollup and stat of each); processes that are gone
// by the time they are read count for nothing.
[[nodiscard]] TreeUsage tree_usage(const std::vector<pid_t>& pids);
// The tree of `top` from /proc: `top` and its descendants.
[[nodiscard]] TreeUsage tree_memory(pid_t top);
// The tree of a worker in `cgroup`: every process in it, and the cgroup's own CPU time
// (which keeps the time of the processes that have exited).
[[nodiscard]] TreeUsage tree_memory(const WorkerCgroup& cgroup);

}  // namespace preforkd::os
