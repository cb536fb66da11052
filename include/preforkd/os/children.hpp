#pragma once
// Reaping and finding the master's children (it is a child subreaper, so orphaned
// grandchildren of workers become its children too).

#include <preforkd/core/exit_status.hpp>
#include <preforkd/core/result.hpp>

#include <optional>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

struct ExitedChild {
  pid_t pid;
  ExitStatus status;
};

// Makes this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER).
[[nodiscard]] bool become_subreaper();

// The next child that has exited, without reaping it (so its pid, and its process group,
// stay reserved until reap()); nullopt when none has (or there is no child at all).
// A failed waitid is an error, never "no child exited".
[[nodiscard]] Result<std::optional<pid_t>> peek_exited_child();

// Reaps the child `pid` (one that peek_exited_child() reported, or one the caller waits
// for). A failed waitpid is an error ("failed to wait for 'pid N': no child processes"): it
// never reads as an exit status.
[[nodiscard]] Result<ExitStatus> reap(pid_t pid);

// Every live child of this process, from /proc/self/task/*/children (os/process_tree).
[[nodiscard]] std::vector<pid_t> list_children();

}  // namespace preforkd::os
