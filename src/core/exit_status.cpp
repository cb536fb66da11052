#include <preforkd/core/exit_status.hpp>

#include <csignal>
#include <cstring>
#include <string>
#include <sys/wait.h>

namespace preforkd {

ExitStatus ExitStatus::from_wait_status(int wait_status) {
  if (WIFSIGNALED(wait_status)) return killed_by(WTERMSIG(wait_status), WCOREDUMP(wait_status));
  return exited_with(WEXITSTATUS(wait_status));
}

std::string describe(const ExitStatus& status) {
  switch (status.kind) {
    case ExitStatus::Kind::exited:
      return "exited with status " + std::to_string(status.code);
    case ExitStatus::Kind::signaled:
      return "exited on signal " + std::to_string(status.signal) + (status.core_dumped ? " (core dumped)" : "");
  }
  return "exited";
}

std::string signal_name(int sig) {
  // sigabbrev_np is glibc 2.32+; it returns the name without the "SIG" prefix.
  if (const char* abbrev = sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  // Real-time signals have no abbreviation: named relative to SIGRTMIN, as strsignal does.
  if (sig == SIGRTMIN) return "SIGRTMIN";
  if (sig > SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  return "signal " + std::to_string(sig);
}

}  // namespace preforkd
