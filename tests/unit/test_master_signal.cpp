// What the master does with each signal 1..64 (glibc: SIGRTMIN 34, SIGRTMAX 64): every one
// has a deliberate action, and only KILL and STOP are left to their default besides the
// fault signals. The table printed here is the README's.

#include <preforkd/core/master_signal.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <cstring>
#include <string>

using preforkd::describe;
using preforkd::master_signal_action;
using preforkd::RealtimeRange;
using preforkd::SignalAction;
using preforkd::watched_on_loop;

namespace {

constexpr RealtimeRange glibc{34, 64};

}  // namespace

TEST_CASE("every signal has a deliberate action") {
  for (int sig = 1; sig <= glibc.max; ++sig) {
    const SignalAction a = master_signal_action(sig, glibc);
    const char* abbrev = sigabbrev_np(sig);
    UNSCOPED_INFO(sig << " " << (abbrev != nullptr ? abbrev : "-") << ": " << describe(a));
    if (sig == SIGKILL || sig == SIGSTOP) {
      CHECK(a == SignalAction::uncatchable);
    } else {
      CHECK(a != SignalAction::uncatchable);
    }
  }
  // The table, in the output of a run with -s.
  SUCCEED();
}

TEST_CASE("signals with an action of their own") {
  CHECK(master_signal_action(SIGTERM, glibc) == SignalAction::stop_graceful);
  CHECK(master_signal_action(SIGINT, glibc) == SignalAction::stop_graceful);
  CHECK(master_signal_action(SIGQUIT, glibc) == SignalAction::stop_fast);
  CHECK(master_signal_action(SIGHUP, glibc) == SignalAction::reload);
  CHECK(master_signal_action(SIGUSR2, glibc) == SignalAction::upgrade);
  CHECK(master_signal_action(SIGTTIN, glibc) == SignalAction::scale_up);
  CHECK(master_signal_action(SIGTTOU, glibc) == SignalAction::scale_down);
  CHECK(master_signal_action(SIGCHLD, glibc) == SignalAction::reap_children);
  CHECK(master_signal_action(SIGUSR1, glibc) == SignalAction::reopen_log);
  CHECK(master_signal_action(SIGPIPE, glibc) == SignalAction::ignore_in_kernel);
}

TEST_CASE("stray signals are logged and ignored on the loop and real-time ones too") {
  for (int sig : {SIGALRM, SIGPWR, SIGVTALRM, SIGPROF, SIGIO, SIGXCPU, SIGXFSZ, SIGSTKFLT, SIGTSTP, SIGURG, SIGWINCH,
                  SIGCONT}) {
    INFO(sig);
    CHECK(master_signal_action(sig, glibc) == SignalAction::log_and_ignore);
  }
  for (int sig = glibc.min; sig <= glibc.max; ++sig) {
    INFO(sig);
    CHECK(master_signal_action(sig, glibc) == SignalAction::log_and_ignore);
    CHECK(watched_on_loop(master_signal_action(sig, glibc)));
  }
}

TEST_CASE("fault signals keep their default so that a real fault dumps core") {
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT}) {
    INFO(sig);
    CHECK(master_signal_action(sig, glibc) == SignalAction::default_fault);
    CHECK_FALSE(watched_on_loop(master_signal_action(sig, glibc)));
  }
}

TEST_CASE("the C library's own signals below SIGRTMIN are ignored and not watched") {
  CHECK(master_signal_action(32, glibc) == SignalAction::libc_reserved);
  CHECK(master_signal_action(33, glibc) == SignalAction::libc_reserved);
  CHECK_FALSE(watched_on_loop(SignalAction::libc_reserved));
  // A C library that keeps none: 32 is an ordinary real-time signal.
  CHECK(master_signal_action(32, RealtimeRange{32, 64}) == SignalAction::log_and_ignore);
}

TEST_CASE("numbers that are no signal cannot be caught") {
  CHECK(master_signal_action(0, glibc) == SignalAction::uncatchable);
  CHECK(master_signal_action(65, glibc) == SignalAction::uncatchable);
  CHECK(master_signal_action(-1, glibc) == SignalAction::uncatchable);
}
