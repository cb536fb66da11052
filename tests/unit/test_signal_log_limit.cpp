// The ignored signals' log: one line per signal number per window, then a count.

#include <preforkd/core/signal_log_limit.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <vector>

using preforkd::SignalLogLimit;
using Count = preforkd::SignalLogLimit::Count;
using ms = std::chrono::milliseconds;

TEST_CASE("the first of each signal is logged at once and the others counted") {
  SignalLogLimit limit(ms(1000));
  CHECK(limit.arrive(SIGUSR1, ms(0)));
  CHECK(limit.arrive(SIGWINCH, ms(10)));  // another number: its own window
  CHECK_FALSE(limit.arrive(SIGUSR1, ms(20)));
  CHECK_FALSE(limit.arrive(SIGUSR1, ms(999)));
  CHECK(limit.next_due() == ms(1000));  // WINCH has no count: nothing to report for it
  CHECK(limit.due(ms(999)).empty());
  CHECK(limit.due(ms(1000)) == std::vector<Count>{{SIGUSR1, 2, ms(1000)}});
  // Reported: a new window is open, with nothing in it yet.
  CHECK_FALSE(limit.next_due());
}

TEST_CASE("a storm gives one count per window and a quiet window closes") {
  SignalLogLimit limit(ms(1000));
  CHECK(limit.arrive(SIGALRM, ms(0)));
  for (int t = 1; t < 1000; ++t) CHECK_FALSE(limit.arrive(SIGALRM, ms(t)));
  CHECK(limit.due(ms(1005)) == std::vector<Count>{{SIGALRM, 999, ms(1005)}});
  for (int t = 1005; t < 2005; ++t) CHECK_FALSE(limit.arrive(SIGALRM, ms(t)));
  CHECK(limit.next_due() == ms(2005));
  CHECK(limit.due(ms(2005)) == std::vector<Count>{{SIGALRM, 1000, ms(1000)}});
  // Quiet since: the window closes without a line, and the next signal is logged at once.
  CHECK(limit.due(ms(3005)).empty());
  CHECK(limit.arrive(SIGALRM, ms(3006)));
}

TEST_CASE("a count not reported yet takes the late ones too") {
  SignalLogLimit limit(ms(1000));
  CHECK(limit.arrive(SIGPWR, ms(0)));
  CHECK_FALSE(limit.arrive(SIGPWR, ms(500)));
  // The window ended at 1000, but the timer that reports it has not run yet.
  CHECK_FALSE(limit.arrive(SIGPWR, ms(1200)));
  CHECK(limit.due(ms(1300)) == std::vector<Count>{{SIGPWR, 2, ms(1300)}});
}

TEST_CASE("after a quiet window a signal is logged at once") {
  SignalLogLimit limit(ms(1000));
  CHECK(limit.arrive(SIGUSR1, ms(0)));
  CHECK(limit.arrive(SIGUSR1, ms(1000)));
  CHECK(limit.due(ms(5000)).empty());
}
