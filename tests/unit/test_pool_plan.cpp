// The adaptive pool's decisions (core/pool_plan), one row per case.

#include <preforkd/core/pool_plan.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace preforkd;

namespace {

using K = PoolDecision::Kind;
constexpr auto E = PoolSlotState::empty;
constexpr auto D = PoolSlotState::draining;
constexpr auto S = PoolSlotState::starting;
constexpr auto R = PoolSlotState::running;
constexpr auto W = Activity::waiting;
constexpr auto B = Activity::busy;
constexpr auto U = Activity::unknown;

PoolSlot slot(int n, PoolSlotState state, Activity a = U, int queued = 0, std::optional<Duration> idle = {}) {
  return {n, state, a, queued, idle};
}

PoolInputs dynamic(int min = 1, int spare = 1, int step = 0, Duration now = 100s) {
  return {PoolMode::dynamic, min, spare, 10s, 0, step, now};
}
PoolInputs ondemand(int min = 0, int step = 0, Duration now = 100s) {
  return {PoolMode::ondemand, min, 0, 10s, 0, step, now};
}

struct Row {
  std::string name;
  std::vector<PoolSlot> slots;
  PoolInputs in;
  K kind;
  std::vector<int> start;
  int retire;
  int step;
  std::string line;  // the log line, "" for none
};

}  // namespace

TEST_CASE("plan_pool: one decision per case") {
  const std::vector<Row> rows{
      {"all waiting with spare kept: nothing",
       {slot(0, R, W, 0, 95s), slot(1, R, W, 0, 95s), slot(2, E), slot(3, E)}, dynamic(1, 1), K::none, {}, -1, 0, ""},
      {"queued with none waiting: grow by 1 at the first shortage",
       {slot(0, R, B, 4), slot(1, R, B), slot(2, R, B), slot(3, E), slot(4, E), slot(5, E), slot(6, E), slot(7, E)},
       dynamic(1, 0), K::grow, {3}, -1, 1, "pool: 3 -> 4 workers: 4 connections queued, none waiting"},
      {"the shortage lasts after the last growth served: twice the step",
       {slot(0, R, B, 4), slot(1, R, B, 1), slot(2, R, B), slot(3, E), slot(4, E), slot(5, E), slot(6, E), slot(7, E)},
       dynamic(1, 0, 1), K::grow, {3, 4}, -1, 2, "pool: 3 -> 5 workers: 5 connections queued, none waiting"},
      {"doubling stops at count",
       {slot(0, R, B, 4), slot(1, R, B), slot(2, R, B), slot(3, R, B), slot(4, R, B), slot(5, E)}, dynamic(1, 0, 4),
       K::grow, {5}, -1, 8, "pool: 5 -> 6 workers: 4 connections queued, none waiting"},
      {"at count with a shortage: nothing and the step stays",
       {slot(0, R, B, 4), slot(1, R, B)}, dynamic(1, 1, 2), K::none, {}, -1, 2, ""},
      {"a worker still starting: no more growth yet and the step stays",
       {slot(0, R, B, 4), slot(1, S), slot(2, E)}, dynamic(1, 0, 1), K::none, {}, -1, 1, ""},
      {"fewer waiting than spare: grow what spare misses",
       {slot(0, R, W), slot(1, R, B), slot(2, E), slot(3, E), slot(4, E)}, dynamic(1, 3), K::grow, {2, 3}, -1, 1,
       "pool: 2 -> 4 workers: 1 waiting, spare is 3"},
      {"the shortage is over: the step resets",
       {slot(0, R, W), slot(1, R, B), slot(2, E)}, dynamic(1, 1, 4), K::none, {}, -1, 0, ""},
      {"fewer than min_count: start what is missing",
       {slot(0, E), slot(1, E), slot(2, E)}, dynamic(2, 0), K::grow, {0, 1}, -1, 0,
       "pool: 0 -> 2 workers: fewer than min_count (2)"},
      {"ondemand from zero: a connection on a slot without a worker starts that slot",
       {slot(0, E), slot(1, E), slot(2, E, U, 1), slot(3, E)}, ondemand(), K::grow, {2}, -1, 0,
       "pool: 0 -> 1 worker: 1 connection on 1 slot without a worker"},
      {"a burst spread over slots: each slot with a connection gets a worker",
       {slot(0, E, U, 3), slot(1, R, B, 2), slot(2, E, U, 5), slot(3, E)}, ondemand(0, 1), K::grow, {0, 2}, -1, 1,
       "pool: 1 -> 3 workers: 8 connections on 2 slots without a worker"},
      {"ondemand keeps no spare: one waiting worker is enough",
       {slot(0, R, W, 0, 99s), slot(1, E)}, ondemand(), K::none, {}, -1, 0, ""},
      {"static: every slot without a worker gets one",
       {slot(0, R, W), slot(1, E), slot(2, E)}, PoolInputs{}, K::grow, {1, 2}, -1, 0,
       "pool: 1 -> 3 workers: pool = \"static\": every slot runs a worker"},
      {"static never retires",
       {slot(0, R, W, 0, 1s), slot(1, R, W, 0, 1s)}, PoolInputs{PoolMode::fixed, 1, 1, 10s, 0, 0, 100s}, K::none, {},
       -1, 0, ""},
      {"idle longer than idle_timeout above min_count: retire the longest idle",
       {slot(0, R, W, 0, 80s), slot(1, R, W, 0, 70s), slot(2, R, W, 0, 85s), slot(3, E)}, dynamic(1, 1), K::retire, {},
       1, 0, "pool: 3 -> 2 workers: worker 1 waited 30s for a connection (idle_timeout 10s)"},
      {"never a busy worker: the one idle long enough goes",
       {slot(0, R, B), slot(1, R, W, 0, 95s), slot(2, R, W, 0, 89s)}, dynamic(1, 1), K::retire, {}, 2, 0,
       "pool: 3 -> 2 workers: worker 2 waited 11s for a connection (idle_timeout 10s)"},
      {"not idle for idle_timeout yet: nothing",
       {slot(0, R, W, 0, 95s), slot(1, R, W, 0, 91s)}, dynamic(1, 1), K::none, {}, -1, 0, ""},
      {"never below min_count", {slot(0, R, W, 0, 1s), slot(1, R, W, 0, 1s)}, dynamic(2, 0), K::none, {}, -1, 0, ""},
      {"never below spare waiting", {slot(0, R, W, 0, 1s), slot(1, R, B)}, dynamic(1, 1), K::none, {}, -1, 0, ""},
      {"one at a time: not while another drains",
       {slot(0, R, W, 0, 1s), slot(1, R, W, 0, 1s), slot(2, D)}, dynamic(1, 1), K::none, {}, -1, 0, ""},
      {"not while one starts", {slot(0, R, W, 0, 1s), slot(1, R, W, 0, 1s), slot(2, S)}, dynamic(1, 1), K::none, {}, -1,
       0, ""},
      {"ondemand goes back to zero",
       {slot(0, R, W, 0, 50s), slot(1, E)}, ondemand(), K::retire, {}, 0, 0,
       "pool: 1 -> 0 workers: worker 0 waited 50s for a connection (idle_timeout 10s)"},
      {"connections on a shared socket with none waiting are a shortage",
       {slot(0, R, B), slot(1, E)}, PoolInputs{PoolMode::ondemand, 0, 0, 10s, 2, 0, 100s}, K::grow, {1}, -1, 1,
       "pool: 1 -> 2 workers: 2 connections queued, none waiting"},
  };
  for (const Row& row : rows) {
    INFO(row.name);
    const PoolDecision d = plan_pool(row.slots, row.in);
    CHECK(d.kind == row.kind);
    CHECK(d.start == row.start);
    CHECK(d.retire == row.retire);
    CHECK(d.step == row.step);
    CHECK((d.kind == K::none ? std::string() : pool_log_line(d)) == row.line);
  }
}
