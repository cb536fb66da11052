#pragma once
// Worker cgroups (cgroup v2): each worker process and everything it forks live in a cgroup
// of their own, `<base>/preforkd-<master pid>/slot-<slot>.<n>`, so the master can count the
// whole tree (cpu.stat, cgroup.procs) and kill it at once (cgroup.kill), setsid() or not.
//
// <base> is the master's own cgroup on the cgroup2 mount (from /proc/self/cgroup and
// /proc/self/mounts): under systemd with Delegate=yes the service's cgroup, as root on the
// hybrid layout the `unified` mount. No controller is enabled in the subtree, so the
// "no internal processes" rule does not apply and the master stays where it is.
//
// A child starts in its cgroup: os/spawn.cpp passes the directory fd opened here to
// clone3(CLONE_INTO_CGROUP) (or, where the kernel lacks it, the child writes "0" to its
// cgroup.procs between fork and exec). The cgroup of a slot's next process is made ahead,
// after the current one has started (make_spare), so a respawn makes no directory.

#include <preforkd/core/result.hpp>
#include <preforkd/os/fd.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

// --- parsers, for tests ---------------------------------------------------------------

// The mount point of the first cgroup2 file system in /proc/self/mounts (octal escapes
// such as \040 decoded), or nullopt when there is none.
[[nodiscard]] std::optional<std::string> parse_cgroup2_mount(std::string_view mounts);
// The cgroup2 path ("0::/a/b" line) of /proc/<pid>/cgroup, e.g. "/a/b"; nullopt without one.
[[nodiscard]] std::optional<std::string> parse_cgroup2_path(std::string_view proc_cgroup);
// usage_usec of a cpu.stat file.
[[nodiscard]] std::optional<std::uint64_t> parse_cpu_stat_usage_usec(std::string_view cpu_stat);
// The master pid in a "preforkd-<pid>" cgroup name; nullopt for any other name.
[[nodiscard]] std::optional<pid_t> parse_master_cgroup_name(std::string_view name);
// "populated 1" in a cgroup.events file.
[[nodiscard]] bool parse_cgroup_populated(std::string_view cgroup_events);

// --- one worker's cgroup ----------------------------------------------------------------

class WorkerCgroup {
 public:
  explicit WorkerCgroup(std::string path) : path_(std::move(path)) {}
  [[nodiscard]] const std::string& path() const { return path_; }
  // The cgroup's directory, for a child to start in (SpawnSpec::cgroup_fd). The error
  // names the directory and the errno.
  [[nodiscard]] Result<Fd> open_directory() const;
  // The processes in it now (cgroup.procs).
  [[nodiscard]] std::vector<pid_t> pids() const;
  // CPU time used by every process that was ever in it (cpu.stat usage_usec).
  [[nodiscard]] std::optional<std::uint64_t> cpu_usage_usec() const;
  // SIGKILL to every process in it (cgroup.kill, or each pid of cgroup.procs on a kernel
  // before 5.14). The error names the file and the errno.
  [[nodiscard]] Status kill() const;
  // rmdir: true once it is gone (false while processes are still in it).
  bool remove() const;

 private:
  std::string path_;
};

// --- the master's cgroup ------------------------------------------------------------------

// A leftover `preforkd-<pid>` cgroup of a master that is gone, killed at start.
struct StaleCgroup {
  std::string path;
  pid_t master = 0;
  int processes = 0;  // how many were killed
  bool removed = false;
};

// What to do with a `preforkd-<own pid>` cgroup found at start: after an in-place upgrade
// (same pid) it holds this master's own workers and is taken over; otherwise it was left by
// an earlier process with this pid and its processes are killed.
enum class OwnCgroup { fresh, adopt };

class CgroupTree {
 public:
  // Finds the master's own cgroup2 directory and makes `preforkd-<pid>` in it. The error
  // says why there is none ("no cgroup2 mount in /proc/self/mounts", "mkdir '…': …").
  [[nodiscard]] static Result<std::unique_ptr<CgroupTree>> create(OwnCgroup own = OwnCgroup::fresh);
  ~CgroupTree();
  CgroupTree(const CgroupTree&) = delete;
  CgroupTree& operator=(const CgroupTree&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  // The cgroup for the next process of `slot`: its spare (make_spare), or a new
  // `slot-<slot>.<n>` made now.
  [[nodiscard]] Result<std::unique_ptr<WorkerCgroup>> take_worker(int slot);
  // Makes `slot`'s spare, the cgroup its next process starts in, unless it has one: called
  // once a process has started, so that the next start (a respawn) makes no directory.
  [[nodiscard]] Status make_spare(int slot);
  // Removes the spares of slot `from` and above (every spare with 0): slots scaled away, or
  // before an in-place upgrade (the new image makes its own).
  void drop_spares(int from = 0);
  [[nodiscard]] bool has_spare(int slot) const { return spares_.contains(slot); }
  // The cgroup of a running worker (after an upgrade), from /proc/<pid>/cgroup; an error
  // when it is not one of this tree's.
  [[nodiscard]] Result<std::unique_ptr<WorkerCgroup>> adopt_worker(pid_t pid) const;
  // The `preforkd-<pid>` siblings of this master's cgroup whose master is gone: their
  // processes are killed (cgroup.kill) and, once empty, the cgroups removed.
  [[nodiscard]] std::vector<StaleCgroup> kill_stale() const;

 private:
  CgroupTree(std::string parent, std::string path) : parent_(std::move(parent)), path_(std::move(path)) {}
  [[nodiscard]] Result<std::unique_ptr<WorkerCgroup>> make_worker(int slot);
  std::string parent_;  // the master's own cgroup
  std::string path_;    // parent_/preforkd-<pid>
  unsigned long next_ = 0;
  std::map<int, std::unique_ptr<WorkerCgroup>> spares_;  // by slot: empty, made ahead
};

}  // namespace preforkd::os
