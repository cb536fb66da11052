#include <preforkd/os/children.hpp>

#include <preforkd/os/process_tree.hpp>
#include <preforkd/os/sys_error.hpp>

#include <cerrno>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace preforkd::os {

bool become_subreaper() { return ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; }

Result<std::optional<pid_t>> peek_exited_child() {
  siginfo_t info{};
  while (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
    if (errno == ECHILD) return std::optional<pid_t>{};  // no child at all: none has exited
    if (errno != EINTR) return errno_error("wait for", "an exited child");
  }
  if (info.si_pid == 0) return std::optional<pid_t>{};
  return std::optional<pid_t>{info.si_pid};
}

Result<ExitStatus> reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno_error("wait for", "pid " + std::to_string(pid));
  }
  return ExitStatus::from_wait_status(status);
}

std::vector<pid_t> list_children() {
  std::vector<pid_t> out;
  append_children(::getpid(), out);
  return out;
}

}  // namespace preforkd::os
