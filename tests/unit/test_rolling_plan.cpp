// The rolling plan's table: what a rolling update does on each event, with max_surge.

#include <preforkd/core/rolling_plan.hpp>

#include <catch2/catch.hpp>

using namespace preforkd;
using A = RollAction::Kind;
using E = RollEvent::Kind;

namespace {

RollEvent ev(E kind, int slot = -1, std::string reason = "") {
  RollEvent e;
  e.kind = kind;
  e.slot = slot;
  e.reason = std::move(reason);
  return e;
}

// The actions as "kind:slot" strings, easy to compare and to read in a failure.
std::vector<std::string> show(const RollTransition& t) {
  std::vector<std::string> out;
  for (const auto& a : t.actions) {
    switch (a.kind) {
      case A::start_candidate:
        out.push_back((a.target == RollTarget::next ? "start:" : "start-previous:") + std::to_string(a.slot));
        break;
      case A::switch_slot: out.push_back("switch:" + std::to_string(a.slot)); break;
      case A::drop_candidate: out.push_back("drop:" + std::to_string(a.slot)); break;
      case A::report_failure: out.push_back("failed:" + a.message); break;
      case A::report_rollback_failure: out.push_back("rollback-failed:" + a.message); break;
      case A::finish: out.push_back((a.ok ? "ok:" : "error:") + a.message); break;
    }
  }
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("one at a time: start then switch then wait for the old one then next") {
  auto t = roll_step(RollingPlan::of({0, 1}, 1), ev(E::begin));
  CHECK(show(t) == V{"start:0"});
  t = roll_step(t.next, ev(E::candidate_ready, 0));
  CHECK(show(t) == V{"switch:0"});  // the old run is stopping: it counts against max_surge
  t = roll_step(t.next, ev(E::run_gone, 0));
  CHECK(show(t) == V{"start:1"});
  t = roll_step(t.next, ev(E::candidate_ready, 1));
  CHECK(show(t) == V{"switch:1"});
  CHECK_FALSE(t.next.finished);
  t = roll_step(t.next, ev(E::run_gone, 1));
  CHECK(show(t) == V{"ok:2 workers replaced"});
  CHECK(t.next.finished);
  // Nothing happens after the end.
  CHECK(roll_step(t.next, ev(E::candidate_ready, 1)).actions.empty());
}

TEST_CASE("max_surge counts candidates starting and old runs stopping") {
  auto t = roll_step(RollingPlan::of({0, 1, 2, 3}, 2), ev(E::begin));
  CHECK(show(t) == V{"start:0", "start:1"});
  t = roll_step(t.next, ev(E::candidate_ready, 1));
  CHECK(show(t) == V{"switch:1"});  // 1 starting + 1 stopping: no room yet
  t = roll_step(t.next, ev(E::run_gone, 1));
  CHECK(show(t) == V{"start:2"});
  t = roll_step(t.next, ev(E::candidate_ready, 0));
  CHECK(show(t) == V{"switch:0"});
  t = roll_step(t.next, ev(E::run_gone, 0));
  CHECK(show(t) == V{"start:3"});
  // A gone event for a slot with nothing stopping changes nothing.
  const auto same = roll_step(t.next, ev(E::run_gone, 0));
  CHECK(same.actions.empty());
  CHECK(same.next == t.next);
}

TEST_CASE("a failed candidate aborts: other candidates are dropped - switched slots roll back") {
  auto t = roll_step(RollingPlan::of({0, 1, 2}, 2), ev(E::begin));
  t = roll_step(t.next, ev(E::candidate_ready, 0));
  t = roll_step(t.next, ev(E::run_gone, 0));
  CHECK(show(t) == V{"start:2"});  // 1 and 2 are starting now
  t = roll_step(t.next, ev(E::candidate_failed, 1, "worker 1 exited with 3 before it was ready"));
  CHECK(show(t) == V{"drop:1", "failed:worker 1 exited with 3 before it was ready", "drop:2"});
  CHECK(t.next.rolling_back);
  t = roll_step(t.next, ev(E::run_gone, 1));
  CHECK(show(t) == V{"start-previous:0"});  // 1 stopping + 1 starting: full
  t = roll_step(t.next, ev(E::candidate_ready, 0));
  CHECK(show(t) == V{"switch:0"});
  t = roll_step(t.next, ev(E::run_gone, 2));
  CHECK(t.actions.empty());
  t = roll_step(t.next, ev(E::run_gone, 0));
  CHECK(show(t) == V{"error:worker 1 exited with 3 before it was ready"});
}

TEST_CASE("a failure before any switch ends with the error once the candidate is dropped") {
  auto t = roll_step(RollingPlan::of({0, 1}, 1), ev(E::begin));
  t = roll_step(t.next, ev(E::candidate_failed, 0, "worker 0 could not be started"));
  // The dropped candidate need not be waited for: it never took the slot.
  CHECK(show(t) == V{"drop:0", "failed:worker 0 could not be started", "error:worker 0 could not be started"});
  CHECK(t.next.finished);
}

TEST_CASE("a failure while rolling back ends the rollback") {
  auto t = roll_step(RollingPlan::of({0, 1}, 1), ev(E::begin));
  t = roll_step(t.next, ev(E::candidate_ready, 0));
  t = roll_step(t.next, ev(E::run_gone, 0));
  t = roll_step(t.next, ev(E::candidate_failed, 1, "first"));
  t = roll_step(t.next, ev(E::run_gone, 1));
  CHECK(show(t) == V{"start-previous:0"});
  t = roll_step(t.next, ev(E::candidate_failed, 0, "second"));
  CHECK(show(t) == V{"drop:0", "rollback-failed:second", "error:first"});
}

TEST_CASE("abort finishes at once with the reason") {
  auto t = roll_step(RollingPlan::of({0, 1}, 1), ev(E::begin));
  t = roll_step(t.next, ev(E::abort, -1, "preforkd is stopping"));
  CHECK(show(t) == V{"error:preforkd is stopping"});
  CHECK(t.next.finished);
}

TEST_CASE("events for a slot without a candidate are ignored") {
  auto t = roll_step(RollingPlan::of({0}, 1), ev(E::begin));
  const auto ready = roll_step(t.next, ev(E::candidate_ready, 5));
  CHECK(ready.actions.empty());
  const auto failed = roll_step(t.next, ev(E::candidate_failed, 5, "x"));
  CHECK(failed.actions.empty());
  CHECK_FALSE(failed.next.rolling_back);
}
