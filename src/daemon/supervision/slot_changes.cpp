// The digest of the slots that tells which kinds of change happened (see the header).

#include <preforkd/daemon/supervision/slot_changes.hpp>

#include <bit>

namespace preforkd::daemon {

namespace {

// A run's process, state and generation; not its STATUS=, usage or stall note, which
// nobody is told about.
void add_run(std::vector<std::int64_t>& out, const RunView& run) {
  out.push_back(run.pid);
  out.push_back(static_cast<std::int64_t>(run.state));
  out.push_back(run.generation);
}

// Marks where each run is (current, candidate, retiring) so that a run moving from one
// place to another is a change even when the numbers alone would line up.
enum Mark : std::int64_t { slot_mark = -1, no_run = -2, current_mark = -3, candidate_mark = -4, retiring_mark = -5 };

}  // namespace

SlotsDigest digest(const std::vector<SlotView>& slots, const SupervisorFacts& facts) {
  SlotsDigest d;
  d.workers = {facts.target_count, facts.generation, facts.stopping ? 1 : 0};
  for (const SlotView& slot : slots) {
    d.workers.push_back(slot_mark);
    d.workers.push_back(slot.removing ? 1 : 0);
    d.workers.push_back(slot.parked ? 1 : 0);
    d.workers.push_back(current_mark);
    if (slot.current) add_run(d.workers, *slot.current);
    else d.workers.push_back(no_run);
    d.workers.push_back(candidate_mark);
    if (slot.candidate) add_run(d.workers, *slot.candidate);
    else d.workers.push_back(no_run);
    for (const RunView& r : slot.retiring) {
      d.workers.push_back(retiring_mark);
      add_run(d.workers, r);
    }
  }
  d.sockets = {static_cast<std::int64_t>(std::bit_cast<std::uintptr_t>(facts.listener_set)),
               static_cast<std::int64_t>(facts.slot_fds.size())};
  for (const std::vector<int>& fds : facts.slot_fds) {
    d.sockets.push_back(slot_mark);
    d.sockets.insert(d.sockets.end(), fds.begin(), fds.end());
  }
  return d;
}

Changes changes_between(const SlotsDigest& before, const SlotsDigest& after) {
  Changes c;
  if (before.workers != after.workers) c = c | Change::workers;
  if (before.sockets != after.sockets) c = c | Change::sockets;
  return c;
}

}  // namespace preforkd::daemon
