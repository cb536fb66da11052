// The recycle plan table: per-slot looks in, the slots to recycle now (and why) out; the
// lifetime jitter from an injected draw.

#include <preforkd/core/recycle_plan.hpp>

#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <string>
#include <vector>

using namespace preforkd;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t MiB = std::uint64_t{1} << 20;

RecycleView ready(pid_t pid, std::optional<std::uint64_t> uss = std::nullopt, Duration started = 0ms) {
  RecycleView v;
  v.pid = pid;
  v.started = started;
  v.eligible = true;
  v.uss = uss;
  return v;
}

RecycleView busy_slot(pid_t pid, std::optional<std::uint64_t> uss = std::nullopt) {
  RecycleView v = ready(pid, uss);
  v.eligible = false;
  return v;
}

// Feeds `looks` in order (each a list of slots at a time) and returns every order given.
struct Look {
  Duration now;
  std::vector<RecycleView> slots;
  bool busy = false;
};

std::vector<std::vector<RecycleOrder>> run(const std::vector<Look>& looks, const RecycleLimits& limits) {
  std::vector<RecycleWatch> watches;
  std::vector<std::vector<RecycleOrder>> out;
  for (const Look& l : looks) {
    RecycleDecision d = plan_recycles(watches, l.slots, l.now, l.busy, limits);
    REQUIRE(d.next.size() == l.slots.size());
    watches = d.next;
    out.push_back(d.recycle);
  }
  return out;
}

RecycleOrder mem(int slot, pid_t pid, std::uint64_t uss, std::uint64_t limit) {
  return RecycleOrder{slot, pid, RecycleCause::memory, uss, limit};
}
RecycleOrder life(int slot, pid_t pid) { return RecycleOrder{slot, pid, RecycleCause::lifetime, 0, 0}; }

}  // namespace

TEST_CASE("plan_recycles: memory above the limit for 3 samples in a row recycles the worker") {
  const RecycleLimits limits{512 * MiB, 0ms, 1};
  struct Row {
    std::string why;
    std::vector<Look> looks;
    std::vector<std::vector<RecycleOrder>> expected;
  };
  const std::vector<Row> table{
      {"three samples above: recycled at the third",
       {{1s, {ready(10, 600 * MiB)}}, {2s, {ready(10, 610 * MiB)}}, {3s, {ready(10, 612 * MiB)}}},
       {{}, {}, {mem(0, 10, 612 * MiB, 512 * MiB)}}},
      {"one sample back below the limit starts the count again",
       {{1s, {ready(10, 600 * MiB)}}, {2s, {ready(10, 600 * MiB)}}, {3s, {ready(10, 500 * MiB)}},
        {4s, {ready(10, 600 * MiB)}}, {5s, {ready(10, 600 * MiB)}}},
       {{}, {}, {}, {}, {}}},
      {"exactly at the limit is not above it",
       {{1s, {ready(10, 512 * MiB)}}, {2s, {ready(10, 512 * MiB)}}, {3s, {ready(10, 512 * MiB)}}},
       {{}, {}, {}}},
      {"a look without a sample (a lifetime look) does not count",
       {{1s, {ready(10, 600 * MiB)}}, {2s, {ready(10, 600 * MiB)}}, {2500ms, {ready(10)}}, {3s, {ready(10, 600 * MiB)}}},
       {{}, {}, {}, {mem(0, 10, 600 * MiB, 512 * MiB)}}},
      {"a new worker in the slot starts a fresh count",
       {{1s, {ready(10, 600 * MiB)}}, {2s, {ready(10, 600 * MiB)}}, {3s, {ready(11, 600 * MiB)}},
        {4s, {ready(11, 600 * MiB)}}, {5s, {ready(11, 600 * MiB)}}},
       {{}, {}, {}, {}, {mem(0, 11, 600 * MiB, 512 * MiB)}}},
      {"a worker that is not eligible (starting, being replaced) waits; its samples still count",
       {{1s, {busy_slot(10, 600 * MiB)}}, {2s, {busy_slot(10, 600 * MiB)}}, {3s, {busy_slot(10, 600 * MiB)}},
        {4s, {ready(10)}}},
       {{}, {}, {}, {mem(0, 10, 600 * MiB, 512 * MiB)}}},
      {"while another rolling update runs nothing starts; it does once that is over",
       {{1s, {ready(10, 600 * MiB)}, true}, {2s, {ready(10, 600 * MiB)}, true}, {3s, {ready(10, 600 * MiB)}, true},
        {4s, {ready(10)}, false}},
       {{}, {}, {}, {mem(0, 10, 600 * MiB, 512 * MiB)}}},
      {"an empty slot is never recycled",
       {{1s, {RecycleView{}}}, {2s, {RecycleView{}}}, {3s, {RecycleView{}}}},
       {{}, {}, {}}},
  };
  for (const Row& r : table) {
    INFO(r.why);
    CHECK(run(r.looks, limits) == r.expected);
  }
}

TEST_CASE("plan_recycles: max_memory 0 (off) never recycles for memory") {
  const RecycleLimits off{0, 0ms, 1};
  const auto orders = run({{1s, {ready(10, 900 * MiB)}}, {2s, {ready(10, 900 * MiB)}}, {3s, {ready(10, 900 * MiB)}},
                           {4s, {ready(10, 900 * MiB)}}},
                          off);
  for (const auto& o : orders) CHECK(o.empty());
}

TEST_CASE("plan_recycles: at most max_surge at once - memory first then the lifetime that ended first") {
  RecycleLimits limits{512 * MiB, 10s, 1};
  // Slot 0 started first, slot 2 next; slot 1 grows. Draw 0.5: exactly 10 s.
  std::vector<RecycleView> at0{ready(10, 100 * MiB, 0ms), ready(11, 100 * MiB, 3s), ready(12, 100 * MiB, 1s)};
  std::vector<RecycleWatch> w = plan_recycles({}, at0, 3s, false, limits).next;
  CHECK(w[0].lifetime_ends == 10s);
  CHECK(w[1].lifetime_ends == 13s);
  CHECK(w[2].lifetime_ends == 11s);
  std::vector<RecycleView> big{ready(10, 100 * MiB, 0ms), ready(11, 700 * MiB, 3s), ready(12, 100 * MiB, 1s)};
  for (Duration t : {4s, 5s}) w = plan_recycles(w, big, t, false, limits).next;
  // At 12 s two lifetimes are over and slot 1 is above the limit for the third time.
  RecycleDecision d = plan_recycles(w, big, 12s, false, limits);
  REQUIRE(d.recycle.size() == 1);
  CHECK(d.recycle[0] == mem(1, 11, 700 * MiB, 512 * MiB));
  limits.max_surge = 2;
  d = plan_recycles(w, big, 12s, false, limits);
  CHECK(d.recycle == std::vector<RecycleOrder>{mem(1, 11, 700 * MiB, 512 * MiB), life(0, 10)});
  limits.max_surge = 3;
  d = plan_recycles(w, big, 12s, false, limits);
  CHECK(d.recycle == std::vector<RecycleOrder>{mem(1, 11, 700 * MiB, 512 * MiB), life(0, 10), life(2, 12)});
  // Busy: nobody.
  CHECK(plan_recycles(w, big, 12s, true, limits).recycle.empty());
}

TEST_CASE("plan_recycles: the lifetime is drawn once per worker and again only when max_lifetime changes") {
  RecycleLimits limits{0, 10s, 1};
  RecycleView v = ready(10, std::nullopt, 1s);
  v.jitter_draw = 0.0;  // the shortest: 9 s
  std::vector<RecycleWatch> w = plan_recycles({}, {v}, 2s, false, limits).next;
  CHECK(w[0].lifetime_ends == 10s);
  v.jitter_draw = 0.999;  // a later draw for the same worker changes nothing
  w = plan_recycles(w, {v}, 5s, false, limits).next;
  CHECK(w[0].lifetime_ends == 10s);
  CHECK(plan_recycles(w, {v}, 9999ms, false, limits).recycle.empty());
  CHECK(plan_recycles(w, {v}, 10s, false, limits).recycle == std::vector<RecycleOrder>{life(0, 10)});
  // A reload to 20 s draws again, from the same start.
  limits.max_lifetime = 20s;
  v.jitter_draw = 0.5;
  w = plan_recycles(w, {v}, 11s, false, limits).next;
  CHECK(w[0].lifetime_ends == 21s);
  // Off: no deadline.
  limits.max_lifetime = 0ms;
  w = plan_recycles(w, {v}, 30s, false, limits).next;
  CHECK(w[0].lifetime_ends == 0ms);
  CHECK(plan_recycles(w, {v}, 30s, false, limits).recycle.empty());
}

TEST_CASE("plan_recycles: a failed recycle is not tried again for recycle_retry_after") {
  const RecycleLimits limits{0, 2s, 1};
  std::vector<RecycleWatch> w = plan_recycles({}, {ready(10)}, 0ms, false, limits).next;
  REQUIRE(plan_recycles(w, {ready(10)}, 3s, false, limits).recycle.size() == 1);
  w[0] = after_failed_recycle(w[0], 3s);
  CHECK(plan_recycles(w, {ready(10)}, 3s + recycle_retry_after - 1ms, false, limits).recycle.empty());
  CHECK(plan_recycles(w, {ready(10)}, 3s + recycle_retry_after, false, limits).recycle.size() == 1);
}

TEST_CASE("jittered_lifetime: within +-10 % - spread by the draw") {
  CHECK(jittered_lifetime(10s, 0.0) == 9s);
  CHECK(jittered_lifetime(10s, 0.5) == 10s);
  CHECK(jittered_lifetime(10s, 1.0) == 11s);
  CHECK(jittered_lifetime(2s, 0.25) == 1900ms);
  CHECK(jittered_lifetime(10s, -3.0) == 9s);  // a draw out of range is clamped
  // A seeded source: eight workers started together get eight different lifetimes.
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::set<Duration::rep> seen;
  for (int i = 0; i < 8; ++i) {
    const Duration d = jittered_lifetime(std::chrono::hours(6), unit(rng));
    CHECK(d >= std::chrono::minutes(324));
    CHECK(d < std::chrono::minutes(396));
    seen.insert(d.count());
  }
  CHECK(seen.size() == 8);
}

TEST_CASE("recycle_text: what the log and status say") {
  CHECK(recycle_text(mem(0, 1, 612 * MiB, 512 * MiB)) == "memory 612 MiB > 512 MiB");
  CHECK(recycle_text(mem(0, 1, 512 * MiB + 1, 512 * MiB)) == "memory 513 MiB > 512 MiB");
  CHECK(recycle_text(life(0, 1)) == "lifetime");
}
