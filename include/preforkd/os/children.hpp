#pragma once
// Reaping and finding the master's children (it is a child subreaper, so orphaned
// grandchildren of workers become its children too).

#include <preforkd/core/exit_status.hpp>

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
// stay reserved until reap()); nullopt when none has.
[[nodiscard]] std::optional<pid_t> peek_exited_child();

// Reaps a child that peek_exited_child() reported.
[[nodiscard]] ExitStatus reap(pid_t pid);

// Every live child of this process, from /proc/self/task/*/children.
[[nodiscard]] std::vector<pid_t> list_children();

}  // namespace preforkd::os
