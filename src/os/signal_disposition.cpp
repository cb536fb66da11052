#include <preforkd/os/signal_disposition.hpp>

#include <preforkd/core/exit_status.hpp>
#include <preforkd/os/sys_error.hpp>

#include <csignal>
#include <sys/syscall.h>
#include <unistd.h>

namespace preforkd::os {

int set_kernel_disposition(int sig, void (*handler)(int)) noexcept {
  // The kernel's struct sigaction (not glibc's): the mask is one word of 64 signals.
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
  } action{handler, 0, nullptr, 0};
  return static_cast<int>(::syscall(SYS_rt_sigaction, sig, &action, nullptr, sizeof action.mask));
}

Status ignore_signal(int sig) {
  if (set_kernel_disposition(sig, SIG_IGN) != 0) return errno_error("ignore", signal_name(sig));
  return Ok{};
}

}  // namespace preforkd::os
