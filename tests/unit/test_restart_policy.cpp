// Backoff arithmetic and exit verdicts.

#include <preforkd/core/restart_policy.hpp>

#include <catch2/catch.hpp>

using namespace preforkd;
using namespace std::chrono_literals;

TEST_CASE("backoff: 0 for the first crash, then doubling from backoff_initial to backoff_max") {
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

TEST_CASE("the crash count restarts after a healthy run") {
  RestartPolicy p;
  p.healthy_after = 1s;
  CHECK(next_failure_count(p, 7, true, 2s) == 1);
  CHECK(next_failure_count(p, 7, true, 500ms) == 8);   // ready but not for long
  CHECK(next_failure_count(p, 7, false, 60s) == 8);    // never ready
}

TEST_CASE("healthy_after follows a ready duration longer than a second") {
  WorkerConfig w;
  w.ready = ReadyPolicy{ReadyKind::alive, 5s};
  CHECK(RestartPolicy::from(w).healthy_after == 5s);
  w.ready = ReadyPolicy{ReadyKind::immediate, 0s};
  CHECK(RestartPolicy::from(w).healthy_after == 1s);
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
