// Backoff arithmetic and exit verdicts.

#include <preforkd/core/restart_policy.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <vector>

using namespace preforkd;
using namespace std::chrono_literals;

TEST_CASE("backoff: 0 for the first crash then doubling from backoff_initial to backoff_max") {
  RestartPolicy p;
  p.backoff_initial = 100ms;
  p.backoff_max = 1s;
  CHECK(backoff_delay(p, 0, 0.5) == 0ms);
  CHECK(backoff_delay(p, 1, 0.5) == 0ms);
  CHECK(backoff_delay(p, 2, 0.5) == 100ms);
  CHECK(backoff_delay(p, 3, 0.5) == 200ms);
  CHECK(backoff_delay(p, 4, 0.5) == 400ms);
  CHECK(backoff_delay(p, 5, 0.5) == 800ms);
  CHECK(backoff_delay(p, 6, 0.5) == 1s);
  CHECK(backoff_delay(p, 1000, 0.5) == 1s);  // no overflow however long the crash loop
}

TEST_CASE("jitter spreads the delay by +-20% within the bounds") {
  RestartPolicy p;
  p.backoff_initial = 100ms;
  p.backoff_max = 10s;
  CHECK(backoff_delay(p, 4, 0.0) == 320ms);
  CHECK(backoff_delay(p, 4, 0.999999) == 480ms);
  CHECK(backoff_delay(p, 2, 0.0) == 100ms);   // never below backoff_initial
  CHECK(backoff_delay(p, 30, 1.0) == 10s);    // never above backoff_max
  CHECK(backoff_delay(p, 30, 0.0) == 8s);
}

TEST_CASE("after a crash: a worker that served is replaced at once - one that cannot stay up backs off") {
  RestartPolicy p;
  p.backoff_initial = 100ms;  // also the throttle window
  p.backoff_max = 1s;
  struct Case {
    const char* what;
    int failures;
    bool was_ready;
    Duration uptime;
    RestartDecision expected;
  };
  const std::vector<Case> cases{
      {"ready, died outside the window: at once", 0, true, 600ms, {1, 0ms}},
      {"ready, outside the window, after a run of crashes: the count starts afresh", 7, true, 600ms, {1, 0ms}},
      {"ready, exactly one window up: at once", 7, true, 100ms, {1, 0ms}},
      {"ready, died inside the window, after a restart: backs off", 1, true, 50ms, {2, 100ms}},
      {"ready, inside the window again: doubling", 3, true, 50ms, {4, 400ms}},
      {"ready, inside the window, first crash of the run: at once", 0, true, 50ms, {1, 0ms}},
      {"never ready, first crash of the run: at once", 0, false, 10ms, {1, 0ms}},
      {"never ready, again: backoff_initial", 1, false, 10ms, {2, 100ms}},
      {"never ready, however long it ran: doubling", 2, false, 60s, {3, 200ms}},
      {"never ready: capped at backoff_max", 5, false, 10ms, {6, 1s}},
      {"never ready, a long loop: still backoff_max", 40, false, 10ms, {41, 1s}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const RestartDecision d = after_crash(p, c.failures, c.was_ready, c.uptime, 0.5);
    CHECK(d.failures == c.expected.failures);
    CHECK(d.delay == c.expected.delay);
  }
}

TEST_CASE("the throttle: a slot restarts at most once per backoff_initial - after its first restart") {
  RestartPolicy p;
  p.backoff_initial = 100ms;
  p.backoff_max = 2s;
  // A worker that is ready at once and dies `uptime` after each start, with the jitter
  // at both ends: the time from one restart to the next is uptime + delay.
  for (Duration uptime : {Duration(1ms), Duration(50ms), Duration(99ms), Duration(100ms), Duration(300ms)}) {
    for (double jitter : {0.0, 0.999}) {
      int failures = 0;
      Duration longest{};
      for (int restart = 0; restart < 30; ++restart) {
        const RestartDecision d = after_crash(p, failures, true, uptime, jitter);
        if (restart > 0) CHECK(uptime + d.delay >= p.backoff_initial);
        failures = d.failures;
        longest = std::max(longest, d.delay);
      }
      INFO("uptime " << uptime.count() << " ms, jitter " << jitter);
      // Up for a window or more: never waits. Less: backs off all the way (to the
      // bottom of backoff_max's jitter range).
      if (uptime >= p.backoff_initial) CHECK(longest == 0ms);
      else CHECK(longest >= p.backoff_max * 4 / 5);
    }
  }
}

TEST_CASE("the policy comes from the worker config") {
  WorkerConfig w;
  w.backoff_initial = 250ms;
  w.backoff_max = 4s;
  w.fatal_exit_codes = {3};
  const RestartPolicy p = RestartPolicy::from(w);
  CHECK(p.backoff_initial == 250ms);
  CHECK(p.backoff_max == 4s);
  CHECK(p.fatal_exit_codes == std::vector<int>{3});
}

TEST_CASE("exit verdicts") {
  RestartPolicy p;
  p.fatal_exit_codes = {3, 42};
  CHECK(judge_exit(p, ExitStatus::exited_with(42)) == ExitVerdict::fail);
  CHECK(judge_exit(p, ExitStatus::exited_with(1)) == ExitVerdict::respawn);
  CHECK(judge_exit(p, ExitStatus::killed_by(42)) == ExitVerdict::respawn);  // signal 42 is not exit code 42
  p.mode = RestartMode::on_failure;
  CHECK(judge_exit(p, ExitStatus::exited_with(0)) == ExitVerdict::stop);
  p.mode = RestartMode::never;
  CHECK(judge_exit(p, ExitStatus::killed_by(9)) == ExitVerdict::fail);
}
