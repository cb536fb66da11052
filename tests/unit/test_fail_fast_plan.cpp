// The fail-fast plan table: "is any worker ready" over time in, refusing and its log
// events out; and which sockets a refusing listener drains.

#include <preforkd/core/fail_fast_plan.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace preforkd;
using namespace std::chrono_literals;

namespace {

using C = FailFastChange;

struct Tick {
  Duration now;
  bool any_ready;
  bool refusing;                        // after the step
  C change = C::none;                   // what the step reports
  std::optional<Duration> check_at{};   // when to look again
};

struct Row {
  std::string why;
  Duration after;
  std::vector<Tick> ticks;
};

}  // namespace

TEST_CASE("fail_fast_step refuses once no worker has been ready for fail_fast_after - until one is") {
  const std::vector<Row> table{
      {"ready all along: never refuses, nothing to wait for",
       5s, {{0ms, true, false}, {10s, true, false}}},
      {"none ready at start: the clock starts at the first look, refuses once it passed",
       5s, {{1s, false, false, C::none, 6s}, {5999ms, false, false, C::none, 6s}, {6s, false, true, C::started}}},
      {"a worker ready before the threshold: no refusal, the clock is reset",
       5s, {{0ms, false, false, C::none, 5s}, {4s, true, false}, {6s, false, false, C::none, 11s}}},
      {"refusing ends the moment a worker is ready",
       1s, {{0ms, false, false, C::none, 1s}, {1s, false, true, C::started}, {3s, false, true}, {4s, true, false, C::ended}}},
      {"0s (off) never refuses and never asks to be woken",
       0ms, {{0ms, false, false}, {100s, false, false}}},
  };
  for (const Row& r : table) {
    INFO(r.why);
    FailFastState s;
    for (const Tick& t : r.ticks) {
      INFO("at " << t.now.count() << "ms");
      const FailFastStep step = fail_fast_step(s, t.any_ready, t.now, r.after);
      CHECK(step.next.refusing == t.refusing);
      CHECK(step.change == t.change);
      CHECK(step.check_at == t.check_at);
      s = step.next;
    }
  }
}

TEST_CASE("fail_fast_step reports what an episode refused and starts the next one from zero") {
  FailFastState s;
  s = fail_fast_step(s, false, 0ms, 1s).next;
  s = fail_fast_step(s, false, 1500ms, 1s).next;
  REQUIRE(s.refusing);
  s.refused = 12;  // the daemon counts resets here
  const FailFastStep end = fail_fast_step(s, true, 4000ms, 1s);
  CHECK(end.change == C::ended);
  CHECK(end.refused == 12);
  CHECK(end.refused_for == 2500ms);
  CHECK(end.next.refused == 0);

  // Off by reload while refusing: ends too, without a ready worker.
  FailFastState t = fail_fast_step(fail_fast_step({}, false, 0ms, 1s).next, false, 1s, 1s).next;
  REQUIRE(t.refusing);
  const FailFastStep off = fail_fast_step(t, false, 2s, 0ms);
  CHECK(off.change == C::ended);
  CHECK_FALSE(off.next.refusing);
  CHECK_FALSE(off.check_at);
}

TEST_CASE("sockets_to_refuse_on drains only sockets no worker process holds") {
  struct SocketRow {
    std::string why;
    bool refusing;
    std::vector<std::vector<int>> holders;
    std::vector<bool> has_process;
    std::vector<bool> drain;
  };
  const std::vector<SocketRow> table{
      {"not refusing: none", false, {{0}, {1}}, {false, false}, {false, false}},
      {"reuseport: the sockets of slots without a process", true, {{0}, {1}, {2}}, {false, true, false},
       {true, false, true}},
      {"shared: only when no slot has a process", true, {{0, 1}}, {false, true}, {false}},
      {"shared, nobody running: drained", true, {{0, 1}}, {false, false}, {true}},
      {"a slot beyond what is known has no process", true, {{3}}, {true}, {true}},
  };
  for (const auto& r : table) {
    INFO(r.why);
    CHECK(sockets_to_refuse_on(r.refusing, r.holders, r.has_process) == r.drain);
  }
}
