// The worker lifecycle table: every (state, event) pair that matters, with its actions.

#include <preforkd/core/worker_lifecycle.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <string>

using namespace preforkd;
using namespace std::chrono_literals;
using A = Action::Kind;
using E = Event::Kind;
using S = WorkerState;

namespace {

LifecyclePolicy policy(ReadyKind ready = ReadyKind::alive) {
  LifecyclePolicy p;
  p.ready = ReadyPolicy{ready, 1s};
  p.ready_timeout = 30s;
  p.stop_timeout = 10s;
  p.restart.backoff_initial = 100ms;
  p.restart.backoff_max = 30s;
  return p;
}

Lifecycle in(S state, int failures = 0) {
  Lifecycle l;
  l.state = state;
  l.failures = failures;
  return l;
}

Event exited(ExitStatus status, bool was_ready, Duration uptime) {
  Event e = Event::of(E::exited);
  e.status = status;
  e.was_ready = was_ready;
  e.uptime = uptime;
  e.jitter = 0.5;  // the middle of the jitter range: exactly the base delay
  return e;
}

std::vector<A> kinds(const Transition& t) {
  std::vector<A> out;
  for (const auto& a : t.actions) out.push_back(a.kind);
  return out;
}

}  // namespace

TEST_CASE("start spawns from stopped or failed or backoff and is ignored while a process runs") {
  for (S s : {S::stopped, S::failed, S::backoff}) {
    auto t = step(in(s), Event::of(E::start), policy());
    CHECK(t.next.state == S::starting);
    CHECK(kinds(t) == std::vector{A::disarm_timer, A::spawn});
  }
  for (S s : {S::starting, S::ready, S::stopping}) {
    auto t = step(in(s), Event::of(E::start), policy());
    CHECK(t.next.state == s);
    CHECK(t.actions.empty());
  }
}

TEST_CASE("readiness: immediate or a duration alive or notify") {
  SECTION("immediate is ready as soon as the process exists") {
    auto t = step(in(S::starting), Event::of(E::spawned), policy(ReadyKind::immediate));
    CHECK(t.next.state == S::ready);
  }
  SECTION("alive arms the ready delay, and the timer makes it ready") {
    auto t = step(in(S::starting), Event::of(E::spawned), policy(ReadyKind::alive));
    CHECK(t.next.state == S::starting);
    REQUIRE(t.actions.size() == 1);
    CHECK(t.actions[0] == Action{A::arm_timer, 1s});
    auto r = step(t.next, Event::of(E::timer), policy(ReadyKind::alive));
    CHECK(r.next.state == S::ready);
  }
  SECTION("notify arms the ready timeout; READY=1 makes it ready") {
    auto t = step(in(S::starting), Event::of(E::spawned), policy(ReadyKind::notify));
    REQUIRE(t.actions.size() == 1);
    CHECK(t.actions[0] == Action{A::arm_timer, 30s});
    auto r = step(t.next, Event::of(E::ready_notified), policy(ReadyKind::notify));
    CHECK(r.next.state == S::ready);
    CHECK(kinds(r) == std::vector{A::disarm_timer});
  }
  SECTION("notify without READY=1 times out: stop it, as a failure, and replace it") {
    auto t = step(in(S::starting), Event::of(E::timer), policy(ReadyKind::notify));
    CHECK(t.next.state == S::stopping);
    CHECK(t.next.stop_intent == StopIntent::replace);
    CHECK(t.next.stop_is_failure);
    CHECK(kinds(t) == std::vector{A::report_ready_timeout, A::send_stop_signal, A::arm_timer});
    CHECK(t.actions[2].delay == 10s);
  }
  SECTION("READY=1 is ignored unless ready = notify") {
    auto t = step(in(S::starting), Event::of(E::ready_notified), policy(ReadyKind::alive));
    CHECK(t.next.state == S::starting);
  }
}

TEST_CASE("readiness: accepting") {
  const LifecyclePolicy p = policy(ReadyKind::accepting);
  SECTION("spawned arms the ready timeout; being seen accepting makes it ready") {
    auto t = step(in(S::starting), Event::of(E::spawned), p);
    CHECK(t.next.state == S::starting);
    REQUIRE(t.actions.size() == 1);
    CHECK(t.actions[0] == Action{A::arm_timer, 30s});
    auto r = step(t.next, Event::of(E::seen_accepting), p);
    CHECK(r.next.state == S::ready);
    CHECK(kinds(r) == std::vector{A::disarm_timer});
  }
  SECTION("never seen accepting: the ready timeout stops it, as a failure, and replaces it") {
    auto t = step(in(S::starting), Event::of(E::timer), p);
    CHECK(t.next.state == S::stopping);
    CHECK(t.next.stop_intent == StopIntent::replace);
    CHECK(t.next.stop_is_failure);
    CHECK(kinds(t) == std::vector{A::report_ready_timeout, A::send_stop_signal, A::arm_timer});
    CHECK(std::string(not_ready_hint(ReadyKind::accepting)).find("never waited for connections") != std::string::npos);
    CHECK(std::string(not_ready_hint(ReadyKind::alive)).empty());
  }
  SECTION("a trial run seen accepting is an ordinary ready run") {
    Lifecycle l = in(S::starting);
    l.trial = true;
    auto r = step(l, Event::of(E::seen_accepting), p);
    CHECK(r.next.state == S::ready);
    CHECK_FALSE(r.next.trial);
  }
  SECTION("seen accepting is ignored unless starting with ready = accepting, and READY=1 does not count") {
    for (ReadyKind k : {ReadyKind::alive, ReadyKind::notify, ReadyKind::immediate})
      CHECK(step(in(S::starting), Event::of(E::seen_accepting), policy(k)).next.state == S::starting);
    for (S s : {S::ready, S::stopping, S::backoff, S::failed, S::stopped}) {
      auto t = step(in(s), Event::of(E::seen_accepting), p);
      CHECK(t.next.state == s);
      CHECK(t.actions.empty());
    }
    CHECK(step(in(S::starting), Event::of(E::ready_notified), p).next.state == S::starting);
  }
}

TEST_CASE("the first crash of a healthy worker restarts it at once - repeated crashes back off") {
  const auto p = policy();
  // Healthy: was ready and up longer than the throttle window (backoff_initial).
  auto t1 = step(in(S::ready, 5), exited(ExitStatus::killed_by(9), true, 10s), p);
  CHECK(t1.next.state == S::starting);
  CHECK(t1.next.failures == 1);
  CHECK(kinds(t1) == std::vector{A::report_crash, A::disarm_timer, A::report_restart, A::disarm_timer, A::spawn});

  // It crashes again at once: backoff_initial.
  auto t2 = step(in(S::starting, 1), exited(ExitStatus::exited_with(1), false, 10ms), p);
  CHECK(t2.next.state == S::backoff);
  CHECK(t2.next.failures == 2);
  CHECK(t2.actions.back() == Action{A::arm_timer, 100ms});
  CHECK(kinds(t2) == std::vector{A::report_crash, A::disarm_timer, A::report_backoff, A::arm_timer});
  CHECK(t2.actions[2].delay == 100ms);

  // And again: doubling.
  auto t3 = step(in(S::starting, 2), exited(ExitStatus::exited_with(1), false, 10ms), p);
  CHECK(t3.actions.back() == Action{A::arm_timer, 200ms});

  // The backoff timer starts the next try.
  auto t4 = step(t3.next, Event::of(E::timer), p);
  CHECK(t4.next.state == S::starting);
  CHECK(t4.next.failures == 3);
  CHECK(kinds(t4) == std::vector{A::report_restart, A::disarm_timer, A::spawn});
}

TEST_CASE("exit verdicts: fatal exit codes - restart = on-failure and never") {
  auto p = policy();
  p.restart.fatal_exit_codes = {42};
  CHECK(step(in(S::ready), exited(ExitStatus::exited_with(42), true, 10s), p).next.state == S::failed);

  p.restart.mode = RestartMode::on_failure;
  CHECK(step(in(S::ready), exited(ExitStatus::exited_with(0), true, 10s), p).next.state == S::stopped);
  CHECK(step(in(S::ready), exited(ExitStatus::exited_with(3), true, 10s), p).next.state == S::starting);
  CHECK(step(in(S::ready), exited(ExitStatus::killed_by(11, true), true, 10s), p).next.state == S::starting);

  p.restart.mode = RestartMode::never;
  CHECK(step(in(S::ready), exited(ExitStatus::exited_with(0), true, 10s), p).next.state == S::stopped);
  CHECK(step(in(S::ready), exited(ExitStatus::exited_with(3), true, 10s), p).next.state == S::failed);

  p.restart.mode = RestartMode::always;
  CHECK(step(in(S::ready), exited(ExitStatus::exited_with(0), true, 10s), p).next.state == S::starting);
}

TEST_CASE("graceful stop: stop_signal - SIGKILL after stop_timeout then stopped or replaced") {
  const auto p = policy();
  auto t = step(in(S::ready), Event::stop_for(StopIntent::remove), p);
  CHECK(t.next.state == S::stopping);
  CHECK(kinds(t) == std::vector{A::send_stop_signal, A::arm_timer});
  CHECK(t.actions[1].delay == 10s);

  auto k = step(t.next, Event::of(E::timer), p);
  CHECK(k.next.state == S::stopping);
  CHECK(kinds(k) == std::vector{A::report_stop_timeout, A::send_kill});

  auto gone = step(k.next, exited(ExitStatus::killed_by(9), true, 20s), p);
  CHECK(gone.next.state == S::stopped);
  CHECK(kinds(gone) == std::vector{A::disarm_timer});  // asked for: no crash

  // A requested replacement starts again at once and does not count as a crash.
  auto r = step(in(S::ready, 0), Event::stop_for(StopIntent::replace), p);
  auto again = step(r.next, exited(ExitStatus::exited_with(0), true, 20s), p);
  CHECK(again.next.state == S::starting);
  CHECK(again.next.failures == 0);
  CHECK(kinds(again) == std::vector{A::report_replaced, A::report_restart, A::disarm_timer, A::spawn});
}

TEST_CASE("stop while backing off or failed needs no signal") {
  const auto p = policy();
  for (S s : {S::backoff, S::failed, S::stopped}) {
    auto t = step(in(s, 3), Event::stop_for(StopIntent::remove), p);
    CHECK(t.next.state == S::stopped);
    CHECK(kinds(t) == std::vector{A::disarm_timer});
    // A restart request retries at once.
    auto r = step(in(s, 3), Event::stop_for(StopIntent::replace), p);
    CHECK(r.next.state == S::starting);
  }
}

TEST_CASE("a second stop request keeps the running stop timer") {
  auto t = step(in(S::stopping), Event::stop_for(StopIntent::remove), policy());
  CHECK(t.next.state == S::stopping);
  CHECK(t.actions.empty());
}

TEST_CASE("fast stop kills at once") {
  auto t = step(in(S::ready), Event::of(E::kill), policy());
  CHECK(t.next.state == S::stopping);
  CHECK(t.next.stop_intent == StopIntent::remove);
  CHECK(kinds(t) == std::vector{A::disarm_timer, A::send_kill});
  auto b = step(in(S::backoff), Event::of(E::kill), policy());
  CHECK(b.next.state == S::stopped);
}

TEST_CASE("a watchdog timeout replaces the worker and counts as a crash") {
  const auto p = policy();
  auto t = step(in(S::ready, 0), Event::of(E::watchdog_expired), p);
  CHECK(t.next.state == S::stopping);
  CHECK(kinds(t) == std::vector{A::report_watchdog, A::send_stop_signal, A::arm_timer});
  auto after = step(t.next, exited(ExitStatus::killed_by(15), true, 10s), p);
  CHECK(after.next.state == S::starting);  // the first failure restarts at once
  CHECK(after.next.failures == 1);
  CHECK(step(in(S::backoff), Event::of(E::watchdog_expired), p).next.state == S::backoff);
}

TEST_CASE("spawn failure backs off like a crash") {
  const auto p = policy();
  auto t1 = step(in(S::starting, 1), Event::of(E::spawn_failed), p);
  CHECK(t1.next.state == S::backoff);
  CHECK(t1.next.failures == 2);
  CHECK(kinds(t1) == std::vector{A::report_spawn_failed, A::report_backoff, A::arm_timer});
  // The first one retries at once, and says so.
  auto t0 = step(in(S::starting, 0), Event::of(E::spawn_failed), p);
  CHECK(t0.next.state == S::starting);
  CHECK(kinds(t0) == std::vector{A::report_spawn_failed, A::report_restart, A::disarm_timer, A::spawn});
}

TEST_CASE("a spawn that fails for want of file descriptors is no crash: a fixed delay - no count") {
  const auto p = policy();
  for (int failures : {0, 1, 5}) {
    auto t = step(in(S::starting, failures), Event::spawn_failed_with(SpawnFailure::fd_shortage, 0.9), p);
    CHECK(t.next.state == S::backoff);
    CHECK(t.next.failures == failures);
    // One report (not a crash report and a backoff report), then the retry after backoff_initial.
    REQUIRE(kinds(t) == std::vector{A::report_spawn_retry, A::arm_timer});
    CHECK(t.actions[0].delay == 100ms);
    CHECK(t.actions[1].delay == 100ms);
    // The timer tries again; the count is untouched.
    auto again = step(t.next, Event::of(E::timer), p);
    CHECK(again.next.state == S::starting);
    CHECK(again.next.failures == failures);
    CHECK(kinds(again) == std::vector{A::disarm_timer, A::spawn});
    // Still short: retried again, quietly (no report per try).
    auto quiet = step(again.next, Event::spawn_failed_with(SpawnFailure::fd_shortage, 0.5), p);
    CHECK(quiet.next.state == S::backoff);
    CHECK(kinds(quiet) == std::vector{A::arm_timer});
    // Once a spawn works, a later shortage is reported again.
    auto started = step(step(quiet.next, Event::of(E::timer), p).next, Event::of(E::spawned), p);
    CHECK_FALSE(started.next.short_of_fds);
  }
}

TEST_CASE("reports: stop timeout and failed and backoff and a replacement's start come from step()") {
  auto p = policy();
  p.restart.fatal_exit_codes = {42};
  auto failed = step(in(S::ready), exited(ExitStatus::exited_with(42), true, 10s), p);
  CHECK(failed.next.state == S::failed);
  CHECK(kinds(failed) == std::vector{A::report_crash, A::disarm_timer, A::report_failed});
  // A clean exit that is not replaced is no failure, but nobody asked for it: a crash.
  p.restart.mode = RestartMode::on_failure;
  CHECK(kinds(step(in(S::ready), exited(ExitStatus::exited_with(0), true, 10s), p)) ==
        std::vector{A::report_crash, A::disarm_timer});
  // A requested replacement reports its start; a first start does not.
  p = policy();
  auto r = step(in(S::ready), Event::stop_for(StopIntent::replace), p);
  auto again = step(r.next, exited(ExitStatus::exited_with(0), true, 20s), p);
  CHECK(kinds(again) == std::vector{A::report_replaced, A::report_restart, A::disarm_timer, A::spawn});
  CHECK(kinds(step(in(S::stopped), Event::of(E::start), p)) == std::vector{A::disarm_timer, A::spawn});
}

TEST_CASE("a trial run (a rolling update's candidate) is never restarted before it is ready") {
  const auto p = policy(ReadyKind::notify);
  auto started = step(in(S::stopped), Event::start_trial(), p);
  CHECK(started.next.trial);
  CHECK(started.next.state == S::starting);
  SECTION("a crash before ready: failed, with no restart and no backoff report") {
    auto t = step(started.next, exited(ExitStatus::exited_with(0), false, 10ms), p);
    CHECK(t.next.state == S::failed);
    CHECK(kinds(t) == std::vector{A::report_crash, A::disarm_timer, A::disarm_timer});
  }
  SECTION("a spawn failure, even for want of file descriptors: failed") {
    auto t = step(started.next, Event::spawn_failed_with(SpawnFailure::fd_shortage, 0.5), p);
    CHECK(t.next.state == S::failed);
    CHECK(kinds(t) == std::vector{A::report_spawn_failed, A::disarm_timer});
  }
  SECTION("a ready timeout stops it for good") {
    auto t = step(started.next, Event::of(E::timer), p);
    CHECK(t.next.state == S::stopping);
    CHECK(t.next.stop_intent == StopIntent::remove);
    auto gone = step(t.next, exited(ExitStatus::killed_by(15), false, 30s), p);
    CHECK(gone.next.state == S::stopped);
    CHECK(kinds(gone) == std::vector{A::report_crash, A::disarm_timer});
  }
  SECTION("once ready it is an ordinary run, restarted after a crash") {
    auto ready = step(started.next, Event::of(E::ready_notified), p);
    CHECK(ready.next.state == S::ready);
    CHECK_FALSE(ready.next.trial);
    auto crash = step(ready.next, exited(ExitStatus::exited_with(1), true, 10s), p);
    CHECK(crash.next.state == S::starting);
  }
}

TEST_CASE("crash churn: a worker that served is replaced at once each time - one that cannot stay up backs off") {
  const auto p = policy(ReadyKind::immediate);
  // Killed 600 ms after each start, long after it was ready: never a backoff.
  Lifecycle l = step(step(in(S::stopped), Event::of(E::start), p).next, Event::of(E::spawned), p).next;
  for (int kill = 0; kill < 20; ++kill) {
    REQUIRE(l.state == S::ready);
    auto t = step(l, exited(ExitStatus::killed_by(9), true, 600ms), p);
    CHECK(t.next.state == S::starting);
    CHECK(t.next.failures == 1);
    const auto actions = kinds(t);
    CHECK(std::count(actions.begin(), actions.end(), A::report_backoff) == 0);
    l = step(t.next, Event::of(E::spawned), p).next;
  }
  // Ready but dead inside the throttle window (50 ms < backoff_initial), again and
  // again: the backoff grows to backoff_max.
  Duration delay{};
  for (int crash = 0; crash < 20; ++crash) {
    REQUIRE(l.state == S::ready);
    auto t = step(l, exited(ExitStatus::killed_by(9), true, 50ms), p);
    if (t.next.state == S::backoff) {
      delay = t.actions.back().delay;
      t = step(t.next, Event::of(E::timer), p);
    }
    l = step(t.next, Event::of(E::spawned), p).next;
  }
  CHECK(delay == 30s);
}

TEST_CASE("counters: an exit nobody asked for is a crash - a stop asked for is not") {
  const auto p = policy(ReadyKind::notify);
  auto count = [](const Transition& t, A kind) {
    const auto actions = kinds(t);
    return std::count(actions.begin(), actions.end(), kind);
  };
  struct Case {
    const char* what;
    Lifecycle from;
    Event event;
    long crashes;
    long replaced;
  };
  Lifecycle stopping_remove = step(in(S::ready), Event::stop_for(StopIntent::remove), p).next;
  Lifecycle stopping_replace = step(in(S::ready), Event::replace_for(ReplaceReason::scale), p).next;
  Lifecycle watchdog = step(in(S::ready), Event::of(E::watchdog_expired), p).next;
  Lifecycle ready_timeout = step(in(S::starting), Event::of(E::timer), p).next;
  Lifecycle killed = step(in(S::ready), Event::of(E::kill), p).next;
  const auto sigkill = exited(ExitStatus::killed_by(9), true, 10s);
  const std::vector<Case> cases{
      {"ready, killed from outside", in(S::ready), sigkill, 1, 0},
      {"starting, crashed", in(S::starting), exited(ExitStatus::exited_with(1), false, 10ms), 1, 0},
      {"ready, exited 0 on its own", in(S::ready), exited(ExitStatus::exited_with(0), true, 10s), 1, 0},
      {"stopped for good (stop, scale down)", stopping_remove, sigkill, 0, 0},
      {"stopped to be replaced (scale kept it)", stopping_replace, sigkill, 0, 1},
      {"fast stop", killed, sigkill, 0, 0},
      {"watchdog timeout", watchdog, sigkill, 1, 0},
      {"ready timeout", ready_timeout, sigkill, 1, 0},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const Transition t = step(c.from, c.event, p);
    CHECK(count(t, A::report_crash) == c.crashes);
    CHECK(count(t, A::report_replaced) == c.replaced);
  }
  // The replacement says why.
  const Transition t = step(stopping_replace, sigkill, p);
  REQUIRE(!t.actions.empty());
  CHECK(t.actions.front() == Action{A::report_replaced, {}, ReplaceReason::scale});
  CHECK(std::string(to_string(ReplaceReason::reload)) == "reload");
  CHECK(std::string(to_string(ReplaceReason::restart)) == "restart");
  CHECK(std::string(to_string(ReplaceReason::scale)) == "scale");
  CHECK(std::string(to_string(ReplaceReason::memory)) == "memory");
  CHECK(std::string(to_string(ReplaceReason::lifetime)) == "lifetime");
}

TEST_CASE("stale events change nothing") {
  const auto p = policy();
  CHECK(step(in(S::ready), Event::of(E::timer), p).next == in(S::ready));
  CHECK(step(in(S::stopped), Event::of(E::timer), p).next == in(S::stopped));
  CHECK(step(in(S::backoff), exited(ExitStatus::exited_with(1), false, 1s), p).next == in(S::backoff));
  CHECK(step(in(S::ready), Event::of(E::spawned), p).next == in(S::ready));
}

TEST_CASE("every state has a name") {
  for (S s : {S::stopped, S::starting, S::ready, S::stopping, S::backoff, S::failed})
    CHECK(std::string(to_string(s)) != "unknown");
  CHECK(has_process(S::starting));
  CHECK(has_process(S::ready));
  CHECK(has_process(S::stopping));
  CHECK_FALSE(has_process(S::backoff));
}

namespace {

Event exec_failed(int err) {
  Event e = exited(ExitStatus::exited_with(err == ENOENT ? 127 : 126), false, 1ms);
  e.exec_errno = err;
  return e;
}

}  // namespace

TEST_CASE("a process whose exec failed is never ready and is reported once per attempt") {
  const auto p = policy(ReadyKind::immediate);
  // Even with ready = "immediate": it never ran the program.
  Event spawned = Event::of(E::spawned);
  spawned.exec_errno = ENOENT;
  auto s = step(in(S::starting), spawned, p);
  CHECK(s.next.state == S::starting);
  CHECK(s.actions.empty());

  // Each row: the lifecycle before the exit, and the one line it gets with what follows.
  struct Row {
    Lifecycle before;
    S next;
    std::vector<A> actions;
    Duration delay;  // of report_exec_failed
  };
  const std::vector<Row> table = {
      // The first failure of a run: tried again at once, in the same line.
      {in(S::starting, 0),
       S::starting,
       {A::report_crash, A::disarm_timer, A::report_exec_failed, A::disarm_timer, A::spawn},
       0ms},
      // Then backing off: one line with the delay, none when the timer starts the next try.
      {in(S::starting, 1), S::backoff, {A::report_crash, A::disarm_timer, A::report_exec_failed, A::arm_timer}, 100ms},
      {in(S::starting, 3), S::backoff, {A::report_crash, A::disarm_timer, A::report_exec_failed, A::arm_timer}, 400ms},
  };
  for (std::size_t i = 0; i < table.size(); ++i) {
    INFO("row " << i);
    auto t = step(table[i].before, exec_failed(ENOENT), p);
    CHECK(t.next.state == table[i].next);
    CHECK(t.next.exec_failed);
    CHECK(kinds(t) == table[i].actions);
    const auto report = std::find_if(t.actions.begin(), t.actions.end(),
                                     [](const Action& a) { return a.kind == A::report_exec_failed; });
    REQUIRE(report != t.actions.end());
    CHECK(report->delay == table[i].delay);
  }
  auto backing_off = step(in(S::starting, 1), exec_failed(EACCES), p);
  auto retry = step(backing_off.next, Event::of(E::timer), p);
  CHECK(retry.next.state == S::starting);
  CHECK(kinds(retry) == std::vector{A::disarm_timer, A::spawn});  // no report_restart
  // Once a process runs the program, a later crash reports its restart again.
  auto runs = step(retry.next, Event::of(E::spawned), p);
  CHECK_FALSE(runs.next.exec_failed);
  auto crash = step(in(S::starting, 1), exited(ExitStatus::exited_with(1), false, 10ms), p);
  CHECK(kinds(step(crash.next, Event::of(E::timer), p)) == std::vector{A::report_restart, A::disarm_timer, A::spawn});
}

TEST_CASE("an exec failure that is not restarted is reported before the verdict") {
  auto p = policy();
  p.restart.mode = RestartMode::never;
  auto t = step(in(S::starting), exec_failed(ENOENT), p);
  CHECK(t.next.state == S::failed);
  CHECK(kinds(t) == std::vector{A::report_crash, A::report_exec_failed, A::disarm_timer, A::report_failed});
  // A rolling update's candidate: reported, never restarted.
  Lifecycle trial = in(S::starting);
  trial.trial = true;
  auto c = step(trial, exec_failed(ENOENT), policy());
  CHECK(c.next.state == S::failed);
  CHECK(kinds(c) == std::vector{A::report_crash, A::report_exec_failed, A::disarm_timer, A::disarm_timer});
}
