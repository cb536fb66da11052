#pragma once
// Private to spawn: the child's side of a start. spawn.cpp lays out a ChildPlan before the
// start; spawn_child.cpp starts the child (clone3, clone or fork) and runs it up to exec.

#include <preforkd/os/spawn.hpp>

#include <cstddef>
#include <string>
#include <vector>

#include <sched.h>

namespace preforkd::os::spawn_child {

inline constexpr char listen_pid_prefix[] = "LISTEN_PID=";
inline constexpr char watchdog_pid_prefix[] = "WATCHDOG_PID=";
inline constexpr std::size_t pid_digits = 20;

// Everything the child touches, laid out before fork so the child never allocates.
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string listen_pid;  // "LISTEN_PID=" followed by room for the digits
  std::string watchdog_pid;  // the same for WATCHDOG_PID, when wanted
  const SpawnSpec* spec = nullptr;
  int devnull = -1;
  int out_w = -1;
  int err_w = -1;
  int report_w = -1;
  bool pin = false;    // apply cpu_mask
  cpu_set_t cpu_mask;  // built before fork: CPU_SET is not something to do in the child
  bool join_cgroup = false;  // not started in spec.cgroup_fd: write cgroup.procs before exec
};

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer cannot follow a child that runs on the parent's memory: forks there.
inline constexpr bool share_memory_until_exec = false;
#else
inline constexpr bool share_memory_until_exec = true;
#endif

// Starts the child running `plan` (see spawn_child.cpp): its pid, or -1 with errno set.
// `fallback` is set, once, when the kernel cannot start a child in its cgroup.
[[nodiscard]] pid_t start_child(ChildPlan& plan, std::string& fallback);

}  // namespace preforkd::os::spawn_child
