// The stall plan table: a slot's samples in, stalled or not out; and the sampling cadence.

#include <preforkd/core/stall_plan.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace preforkd;
using namespace std::chrono_literals;

namespace {

constexpr auto W = Activity::waiting;
constexpr auto B = Activity::busy;
constexpr auto U = Activity::unknown;

struct Row {
  std::string why;
  Duration timeout;
  std::vector<StallSample> samples;  // fed in order to one window
  int stalled_at;                    // index of the sample that is judged stalled, -1 for none
  int queued = 0;                    // the verdict's depth then
  Duration waited{};                 // and how long nothing was taken
};

}  // namespace

TEST_CASE("judge_stall: a queue that holds connections nobody takes for the timeout is a stall") {
  const std::vector<Row> table{
      // why, timeout, samples {at, queued, activity}, index of the stalled verdict, queued, waited
      {"a queue that never shrinks, worker busy: stalled once the timeout passed",
       1s, {{0ms, 3, B}, {500ms, 3, B}, {999ms, 3, B}, {1000ms, 3, B}}, 3, 3, 1000ms},
      {"a growing queue is no progress either",
       1s, {{0ms, 1, B}, {400ms, 2, B}, {800ms, 4, B}, {1200ms, 5, B}}, 3, 5, 1200ms},
      {"the depth went down: the clock starts again there",
       1s, {{0ms, 3, B}, {600ms, 2, B}, {1200ms, 2, B}, {1599ms, 3, B}, {1600ms, 3, B}}, 4, 3, 1000ms},
      {"a busy worker that keeps taking connections is never stalled",
       1s, {{0ms, 5, B}, {400ms, 4, B}, {800ms, 6, B}, {1200ms, 5, B}, {1600ms, 4, B}, {2000ms, 3, B}}, -1},
      {"an empty queue at one sample ends the window",
       1s, {{0ms, 2, B}, {700ms, 2, B}, {800ms, 0, B}, {900ms, 2, B}, {1800ms, 2, B}, {1900ms, 2, B}}, 5, 2, 1000ms},
      {"a worker seen waiting for a connection is taking them",
       1s, {{0ms, 2, B}, {700ms, 2, W}, {1000ms, 2, B}, {1500ms, 2, B}, {2000ms, 2, B}}, 4, 2, 1000ms},
      {"unknown activity (no /proc) is judged by the queue alone",
       1s, {{0ms, 1, U}, {1000ms, 1, U}}, 1, 1, 1000ms},
      {"an unknown depth (-1) is an empty queue",
       1s, {{0ms, -1, B}, {2000ms, -1, B}}, -1},
      {"timeout 0 (off) never stalls",
       0ms, {{0ms, 9, B}, {100000ms, 9, B}}, -1},
      {"a single sample is no window yet",
       1s, {{5000ms, 3, B}}, -1},
  };
  for (const Row& r : table) {
    INFO(r.why);
    StallWindow w;
    int stalled_at = -1;
    StallVerdict last;
    for (std::size_t i = 0; i < r.samples.size(); ++i) {
      const StallVerdict v = judge_stall(w, r.samples[i], r.timeout);
      w = v.next;
      if (v.stalled && stalled_at < 0) {
        stalled_at = static_cast<int>(i);
        last = v;
      }
    }
    CHECK(stalled_at == r.stalled_at);
    if (r.stalled_at >= 0) {
      CHECK(last.queued == r.queued);
      CHECK(last.waited == r.waited);
    }
  }
}

TEST_CASE("judge_stall: a stall closes the window - so the next worker starts afresh") {
  StallWindow w;
  w = judge_stall(w, {0ms, 2, B}, 1s).next;
  const StallVerdict v = judge_stall(w, {1000ms, 2, B}, 1s);
  REQUIRE(v.stalled);
  CHECK(v.next == StallWindow{});
  // The replacement inherits the queue: it has its own full timeout to take from it.
  const StallVerdict after = judge_stall(v.next, {1100ms, 2, B}, 1s);
  CHECK_FALSE(after.stalled);
  CHECK(after.next.open);
  CHECK(after.next.since == 1100ms);
}

TEST_CASE("stall_cadence: a tenth of the timeout between full looks - a twentieth at suspects - bounded") {
  struct CadenceRow {
    Duration timeout, idle, busy;
  };
  const std::vector<CadenceRow> table{
      {30s, 1s, 10ms},       // the default: once a second, 10 ms at a suspect slot
      {1s, 100ms, 10ms},     //
      {100ms, 10ms, 5ms},    // the shortest timeout the config takes
      {720h, 1s, 10ms},      // the longest: still once a second
  };
  for (const auto& r : table) {
    INFO(r.timeout.count());
    CHECK(stall_cadence(r.timeout) == StallCadence{r.idle, r.busy});
  }
}
