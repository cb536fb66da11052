// Which kinds of change the supervisor's observers are told about: the digest of the view.

#include <preforkd/daemon/supervision/slot_changes.hpp>

#include <catch2/catch.hpp>

#include <vector>

using namespace preforkd;
using namespace preforkd::daemon;

namespace {

RunView run(int slot, pid_t pid, WorkerState state, int generation = 0) {
  RunView r;
  r.slot = slot;
  r.pid = pid;
  r.state = state;
  r.generation = generation;
  return r;
}

// Two ready workers on the sockets of two slots.
struct Scene {
  std::vector<SlotView> slots;
  SupervisorFacts facts;
  int set = 0;  // stands for the listener set's address
  Scene() {
    for (int i = 0; i < 2; ++i) {
      SlotView s;
      s.slot = i;
      s.current = run(i, 100 + i, WorkerState::ready);
      slots.push_back(s);
    }
    facts.target_count = 2;
    facts.listener_set = &set;
    facts.slot_fds = {{3}, {4}};
  }
  [[nodiscard]] SlotsDigest now() const { return digest(slots, facts); }
};

Changes after(const Scene& before, const Scene& next) { return changes_between(before.now(), next.now()); }

}  // namespace

TEST_CASE("slot changes - nothing an observer reads changed - nobody is told") {
  Scene a;
  Scene b = a;
  b.slots[0].current->notify_status = "serving 12 requests";
  b.slots[0].current->usage.rss_bytes = 1 << 20;
  b.slots[1].current->stall_note = "1 connection queued";
  b.slots[1].restarts = 3;
  CHECK(after(a, b).empty());
}

TEST_CASE("slot changes - a run's process or state is a workers change") {
  Scene a;
  Scene b = a;
  b.slots[1].current->state = WorkerState::backoff;
  CHECK(after(a, b) == Changes(Change::workers));
  Scene c = a;
  c.slots[1].current->pid = 200;
  CHECK(after(a, c) == Changes(Change::workers));
  Scene d = a;
  d.slots[0].current->generation = 1;
  CHECK(after(a, d) == Changes(Change::workers));
}

TEST_CASE("slot changes - a candidate that starts or takes over is a workers change") {
  Scene a;
  Scene b = a;
  b.slots[0].candidate = run(0, 300, WorkerState::starting, 1);
  CHECK(after(a, b) == Changes(Change::workers));
  // The candidate becomes current and the old run retires with the same numbers.
  Scene c = b;
  c.slots[0].retiring.push_back(*c.slots[0].current);
  c.slots[0].current = c.slots[0].candidate;
  c.slots[0].candidate.reset();
  CHECK(after(b, c) == Changes(Change::workers));
  Scene d = c;
  d.slots[0].retiring.clear();
  CHECK(after(c, d) == Changes(Change::workers));
}

TEST_CASE("slot changes - a slot removed or added - the count - the generation - a stop") {
  Scene a;
  Scene removing = a;
  removing.slots[1].removing = true;
  CHECK(after(a, removing) == Changes(Change::workers));
  Scene count = a;
  count.facts.target_count = 3;
  CHECK(after(a, count) == Changes(Change::workers));
  Scene generation = a;
  generation.facts.generation = 4;
  CHECK(after(a, generation) == Changes(Change::workers));
  Scene stopping = a;
  stopping.facts.stopping = true;
  CHECK(after(a, stopping) == Changes(Change::workers));
}

TEST_CASE("slot changes - new sockets are a sockets change - with a slot also a workers change") {
  Scene a;
  Scene reload = a;
  int other_set = 0;
  reload.facts.listener_set = &other_set;
  CHECK(after(a, reload) == Changes(Change::sockets));
  Scene new_fd = a;
  new_fd.facts.slot_fds[1] = {7};
  CHECK(after(a, new_fd) == Changes(Change::sockets));
  Scene grown = a;
  grown.facts.slot_fds.push_back({5});
  SlotView s;
  s.slot = 2;
  s.current = run(2, -1, WorkerState::stopped);
  grown.slots.push_back(s);
  grown.facts.target_count = 3;
  CHECK(after(a, grown) == (Change::workers | Change::sockets));
}

TEST_CASE("slot changes - the first look tells everything") {
  const Scene a;
  CHECK(changes_between(SlotsDigest{}, a.now()) == (Change::workers | Change::sockets));
  CHECK(changes_between(a.now(), a.now()).empty());
}
