#include <preforkd/core/master_signal.hpp>

#include <csignal>

namespace preforkd {

SignalAction master_signal_action(int sig, RealtimeRange rt) {
  switch (sig) {
    case SIGTERM:
    case SIGINT: return SignalAction::stop_graceful;
    case SIGQUIT: return SignalAction::stop_fast;
    case SIGHUP: return SignalAction::reload;
    case SIGUSR2: return SignalAction::upgrade;
    case SIGTTIN: return SignalAction::scale_up;
    case SIGTTOU: return SignalAction::scale_down;
    case SIGCHLD: return SignalAction::reap_children;
    case SIGUSR1: return SignalAction::reopen_log;
    case SIGPIPE: return SignalAction::ignore_in_kernel;
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGTRAP:
    case SIGSYS:
    case SIGABRT: return SignalAction::default_fault;
    case SIGKILL:
    case SIGSTOP: return SignalAction::uncatchable;
    default: break;
  }
  if (sig < 1 || sig > rt.max) return SignalAction::uncatchable;
  // The kernel's first real-time signals, below the C library's SIGRTMIN: glibc's own.
  if (sig >= kernel_first_realtime_signal && sig < rt.min) return SignalAction::libc_reserved;
  return SignalAction::log_and_ignore;
}

bool watched_on_loop(SignalAction action) {
  switch (action) {
    case SignalAction::stop_graceful:
    case SignalAction::stop_fast:
    case SignalAction::reload:
    case SignalAction::upgrade:
    case SignalAction::scale_up:
    case SignalAction::scale_down:
    case SignalAction::reap_children:
    case SignalAction::reopen_log:
    case SignalAction::log_and_ignore: return true;
    case SignalAction::ignore_in_kernel:
    case SignalAction::libc_reserved:
    case SignalAction::default_fault:
    case SignalAction::uncatchable: return false;
  }
  return false;
}

const char* describe(SignalAction action) {
  switch (action) {
    case SignalAction::stop_graceful: return "graceful stop";
    case SignalAction::stop_fast: return "fast stop";
    case SignalAction::reload: return "reload";
    case SignalAction::upgrade: return "upgrade in place";
    case SignalAction::scale_up: return "one worker more";
    case SignalAction::scale_down: return "one worker fewer";
    case SignalAction::reap_children: return "reap children";
    case SignalAction::reopen_log: return "reopen log files (none: logged and ignored)";
    case SignalAction::log_and_ignore: return "logged and ignored";
    case SignalAction::ignore_in_kernel: return "ignored (SIG_IGN)";
    case SignalAction::libc_reserved: return "reserved by the C library (SIG_IGN)";
    case SignalAction::default_fault: return "default action (core dump)";
    case SignalAction::uncatchable: return "cannot be caught";
  }
  return "";
}

}  // namespace preforkd
