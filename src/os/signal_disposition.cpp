#include <preforkd/os/signal_disposition.hpp>

#include <preforkd/core/exit_status.hpp>
#include <preforkd/os/sys_error.hpp>

#include <csignal>
#include <sys/syscall.h>
#include <unistd.h>

namespace preforkd::os {

Status ignore_signal(int sig) {
  // The kernel's struct sigaction (not glibc's): the mask is one word of 64 signals.
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
  } ign{SIG_IGN, 0, nullptr, 0};
  if (::syscall(SYS_rt_sigaction, sig, &ign, nullptr, sizeof ign.mask) != 0)
    return errno_error("ignore", signal_name(sig));
  return Ok{};
}

}  // namespace preforkd::os
