// The scale plan's table: what a scale does to each slot, and what settling does to the
// slots being removed, one row per case (core/scale_plan.hpp says the rule).

#include <preforkd/core/scale_plan.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace preforkd;
using namespace std::chrono_literals;
using K = ScaleAction::Kind;
using W = WorkerState;

namespace {

constexpr Duration now = 100s;
constexpr Duration drain_max = 2s;

ScaleSlotFacts serving(W state = W::ready) {
  ScaleSlotFacts f;
  f.state = state;
  f.has_process = has_process(state);
  return f;
}

ScaleSlotFacts removing(W state, bool draining, bool queued = false, Duration until = now + 1s) {
  ScaleSlotFacts f = serving(state);
  f.removing = true;
  f.draining = draining;
  f.drain_until = draining ? until : Duration{};
  f.queued = queued;
  return f;
}

std::string show(const std::vector<ScaleAction>& actions) {
  std::string out;
  for (const ScaleAction& a : actions) {
    if (!out.empty()) out += " ";
    switch (a.kind) {
      case K::add: out += "add:"; break;
      case K::keep: out += "keep:"; break;
      case K::take_back: out += "take-back:"; break;
      case K::start_again: out += a.counted ? "start-again-counted:" : "start-again:"; break;
      case K::drain: out += "drain-" + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(a.until - now).count()) + "s:"; break;
      case K::stop: out += "stop:"; break;
      case K::remove: out += "remove:"; break;
    }
    out += std::to_string(a.slot);
  }
  return out;
}

struct ScaleRow {
  const char* what;
  std::vector<ScaleSlotFacts> slots;
  int target;
  int count;
  const char* actions;
};

struct SettleRow {
  const char* what;
  std::vector<ScaleSlotFacts> slots;
  const char* actions;
  bool poll_again;
};

}  // namespace

TEST_CASE("scale plan: what a scale does to each slot", "[scale_plan]") {
  const std::vector<ScaleRow> rows = {
      {"up from 2 to 4: two slots added at the end", {serving(), serving()}, 2, 4, "add:2 add:3"},
      {"down from 4 to 2: the highest two drain", {serving(), serving(), serving(), serving()}, 4, 2,
       "drain-2s:2 drain-2s:3"},
      {"the same count: nothing", {serving(), serving()}, 2, 2, ""},
      {"back up while slot 2 still drains: kept as it is", {serving(), serving(), removing(W::ready, true)}, 2, 3,
       "keep:2"},
      {"back up while slot 2 stops: its worker is taken back", {serving(), serving(), removing(W::stopping, false)}, 2,
       3, "take-back:2"},
      {"back up after slot 2's worker stopped: it starts again and counts as a replacement",
       {serving(), serving(), removing(W::stopped, false)}, 2, 3, "start-again-counted:2"},
      {"back up while slot 2 backs off: it starts again, no replacement",
       {serving(), serving(), removing(W::backoff, false)}, 2, 3, "start-again:2"},
      {"up past the slots still removed: kept, then added", {serving(), removing(W::ready, true)}, 1, 3,
       "keep:1 add:2"},
      {"down again while slot 3 is still removed: only slot 2 drains",
       {serving(), serving(), serving(), removing(W::stopping, false)}, 3, 2, "drain-2s:2"},
  };
  for (const ScaleRow& row : rows) {
    INFO(row.what);
    CHECK(show(plan_scale(row.slots, row.target, row.count, now, drain_max)) == row.actions);
  }
}

TEST_CASE("scale plan: settling the slots being removed", "[scale_plan]") {
  ScaleSlotFacts gone = removing(W::stopped, false);
  gone.has_process = false;
  ScaleSlotFacts stopped_draining = removing(W::stopped, true);
  stopped_draining.has_process = false;
  ScaleSlotFacts queued_event = gone;
  queued_event.event_waiting = true;
  ScaleSlotFacts parked_empty = removing(W::ready, true, false);
  parked_empty.removing = false;  // parked: draining, not removed
  ScaleSlotFacts retiring = gone;
  retiring.has_process = true;  // a replaced run of it still stops
  const std::vector<SettleRow> rows = {
      {"nothing removed: nothing", {serving(), serving()}, "", false},
      {"a ready worker with a queue before the deadline: serves on", {serving(), removing(W::ready, true, true)}, "",
       true},
      {"an empty queue: the drain is over, the worker is asked to stop", {serving(), removing(W::ready, true, false)},
       "stop:1", false},
      {"the deadline passed with a queue: stops anyway", {serving(), removing(W::ready, true, true, now - 1s)},
       "stop:1", false},
      {"a queue but no ready worker: stops", {serving(), removing(W::starting, true, true)}, "stop:1", false},
      {"a worker still stopping: the slot stays", {serving(), removing(W::stopping, false)}, "", false},
      {"no process and nothing waiting: the slot goes", {serving(), gone}, "remove:1", false},
      {"a stopped worker whose drain ends: no stop to wait for, it goes at once", {serving(), stopped_draining},
       "stop:1 remove:1", false},
      {"an event still waits for it: the slot stays", {serving(), queued_event}, "", false},
      {"a replaced run still stopping: the slot stays", {serving(), retiring}, "", false},
      {"from the end only: slot 1 waits for slot 2", {serving(), gone, removing(W::stopping, false)}, "", false},
      {"both gone: the last first", {serving(), gone, gone}, "remove:2 remove:1", false},
      {"a slot the pool parked drains like a removed one and stops but stays", {serving(), parked_empty}, "stop:1",
       false},
      {"a kept slot in the middle stops the removal", {serving(), gone, serving(), gone}, "remove:3", false},
  };
  for (const SettleRow& row : rows) {
    INFO(row.what);
    const ScaleSettle s = settle_scale(row.slots, now);
    CHECK(show(s.actions) == row.actions);
    CHECK(s.poll_again == row.poll_again);
  }
}
