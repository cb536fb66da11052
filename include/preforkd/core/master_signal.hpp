#pragma once
// What the master does with each signal: one table, so that every signal has a deliberate
// action (a stray one never kills or stops the master by its default action), and the
// README's and preforkd(8)'s signal tables have one source. Pure: table-tested in
// tests/unit/test_master_signal.cpp.

namespace preforkd {

enum class SignalAction {
  stop_graceful,  // TERM, INT
  stop_fast,      // QUIT
  reload,         // HUP
  upgrade,        // USR2
  scale_up,       // TTIN
  scale_down,     // TTOU
  reap_children,  // CHLD
  reopen_log,     // USR1: preforkd writes no log file of its own, so it is logged and ignored
  log_and_ignore,  // every other catchable signal, real-time ones included (TSTP, ALRM, WINCH, …)
  ignore_in_kernel,  // PIPE: SIG_IGN, so a write to a closed peer fails with EPIPE instead
  libc_reserved,     // 32 and 33, glibc's own (thread cancellation, set-ID): SIG_IGN, not logged,
                     // since glibc refuses to let them be watched
  default_fault,     // SEGV, BUS, ILL, FPE, TRAP, SYS, ABRT: default, so a real fault dumps core
  uncatchable,       // KILL, STOP, and numbers that are no signal
};

// The real-time signals of the running C library: SIGRTMIN and SIGRTMAX (34 and 64 with glibc
// on Linux; glibc keeps 32 and 33 for itself).
inline constexpr int kernel_first_realtime_signal = 32;
struct RealtimeRange {
  int min = 0;
  int max = 0;
};

[[nodiscard]] SignalAction master_signal_action(int sig, RealtimeRange rt);

// The action runs as an event of the master's loop (a uv_signal watch): the signal is
// caught, never acted on inside its handler.
[[nodiscard]] bool watched_on_loop(SignalAction action);

// "log and ignore", "graceful stop", …: for tables and tests.
[[nodiscard]] const char* describe(SignalAction action);

}  // namespace preforkd
