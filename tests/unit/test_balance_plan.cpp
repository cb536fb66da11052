// The balance plan table: per-slot samples in, steering set and next sampling interval out.

#include <preforkd/core/balance_plan.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace preforkd;
using namespace std::chrono_literals;

namespace {

constexpr auto W = Activity::waiting;
constexpr auto B = Activity::busy;
constexpr auto U = Activity::unknown;

BalanceTuning tuning() {
  BalanceTuning t;
  t.fast = 2ms;
  t.slow = 200ms;
  return t;
}

struct Row {
  std::string why;
  std::vector<int> live;
  std::vector<SlotSample> samples;
  std::vector<int> previous;
  std::vector<int> steer_to;
  Duration next;
};

}  // namespace

TEST_CASE("plan_balance steers to waiting workers with empty queues - else to the shortest queues") {
  const std::vector<Row> table{
      // why, live, samples {slot, activity, queued}, previous set, steer to, next sample
      {"all waiting, idle: every live slot, sample rarely", {0, 1, 2}, {{0, W, 0}, {1, W, 0}, {2, W, 0}}, {}, {0, 1, 2}, 200ms},
      {"one busy: the others, sample often", {0, 1}, {{0, B, 0}, {1, W, 0}}, {0, 1}, {1}, 2ms},
      {"waiting with a queued connection: not while one waits with none", {0, 1, 2}, {{0, W, 1}, {1, W, 0}, {2, B, 0}}, {}, {1}, 2ms},
      {"waiting workers with queues beat busy ones with none", {0, 1}, {{0, W, 1}, {1, B, 0}}, {1}, {0}, 2ms},
      {"all waiting with queues: the shortest", {0, 1, 2}, {{0, W, 2}, {1, W, 1}, {2, W, 1}}, {}, {1, 2}, 2ms},
      {"all busy, empty queues, nothing before: spread over all", {0, 1, 2}, {{0, B, 0}, {1, B, 0}, {2, B, 0}}, {}, {0, 1, 2}, 2ms},
      {"all busy: the ones chosen last time (busy the shortest)", {0, 1}, {{0, B, 0}, {1, B, 0}}, {1}, {1}, 2ms},
      {"all busy: the shortest queues first", {0, 1, 2}, {{0, B, 3}, {1, B, 1}, {2, B, 1}}, {0}, {1, 2}, 2ms},
      {"all busy: previous only among the shortest queues", {0, 1, 2}, {{0, B, 3}, {1, B, 1}, {2, B, 1}}, {0, 2}, {2}, 2ms},
      {"all busy: the one just taking its connection beats an empty queue", {0, 1}, {{0, B, 0}, {1, B, 1}}, {1}, {1}, 2ms},
      {"all busy: a previous slot with a longer queue is left", {0, 1}, {{0, B, 0}, {1, B, 2}}, {1}, {0}, 2ms},
      {"a dead slot's sample is ignored: only live slots", {1}, {{0, W, 0}, {1, B, 0}}, {0}, {1}, 2ms},
      {"a dead waiting slot never gets connections", {0, 2}, {{0, B, 0}, {1, W, 0}, {2, B, 0}}, {1}, {0, 2}, 2ms},
      {"no live slot: nothing to steer to, sample rarely", {}, {{0, W, 0}}, {0}, {}, 200ms},
      {"an unsampled live slot is unknown, not waiting", {0, 1}, {{0, W, 0}}, {}, {0}, 200ms},
      {"all unknown and idle: spread, sample rarely", {0, 1}, {{0, U, 0}, {1, U, 0}}, {}, {0, 1}, 200ms},
      {"unknown queue depth (-1) counts as empty", {0, 1}, {{0, W, -1}, {1, B, -1}}, {}, {0}, 2ms},
      {"duplicates and order in live do not matter", {2, 0, 2}, {{2, W, 0}, {0, B, 0}}, {}, {2}, 2ms},
  };
  for (const Row& r : table) {
    INFO(r.why);
    const BalancePlan p = plan_balance(r.live, r.samples, r.previous, tuning());
    CHECK(p.steer_to == r.steer_to);
    CHECK(p.next_sample == r.next);
  }
}

TEST_CASE("plan_balance packs an adaptive pool on the lowest waiting worker") {
  BalanceTuning t = tuning();
  t.packed = 10ms;
  const std::vector<Row> table{
      // why, live, samples {slot, activity, queued}, previous set, steer to, next sample
      {"all waiting, idle: the lowest only, sample soon", {0, 1, 2}, {{0, W, 0}, {1, W, 0}, {2, W, 0}}, {}, {0}, 10ms},
      {"one waiting, idle: it, sample rarely", {3}, {{3, W, 0}}, {}, {3}, 200ms},
      {"the lowest busy: the next waiting one", {0, 1, 2}, {{0, B, 0}, {1, W, 0}, {2, W, 0}}, {0}, {1}, 2ms},
      {"an empty queue before the lowest slot", {0, 1, 2}, {{0, W, 1}, {1, W, 1}, {2, W, 0}}, {}, {2}, 2ms},
      {"all waiting with queues: the lowest of the shortest", {0, 1, 2}, {{0, W, 2}, {1, W, 1}, {2, W, 1}}, {}, {1}, 2ms},
      {"all busy: as without packing", {0, 1, 2}, {{0, B, 3}, {1, B, 1}, {2, B, 1}}, {0}, {1, 2}, 2ms},
  };
  for (const Row& r : table) {
    INFO(r.why);
    const BalancePlan p = plan_balance(r.live, r.samples, r.previous, t, true);
    CHECK(p.steer_to == r.steer_to);
    CHECK(p.next_sample == r.next);
  }
}

TEST_CASE("Activity names are the status words") {
  CHECK(std::string(to_string(Activity::waiting)) == "waiting");
  CHECK(std::string(to_string(Activity::busy)) == "busy");
  CHECK(std::string(to_string(Activity::unknown)) == "unknown");
}
