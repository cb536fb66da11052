// Rolling updates (reload and restart): slot by slot, a new run starts on the slot's
// own sockets beside the old one; once it is ready the old one stops gracefully. At
// most max_surge processes beyond the worker count run at any time (new ones starting,
// old ones stopping). A new run that fails before it is ready
// aborts the update: new runs stop, and slots already switched roll back.

#include <preforkd/daemon/supervisor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>

namespace preforkd::daemon {


void Supervisor::roll(std::shared_ptr<const Generation> gen, std::vector<int> slots, Done done) {
  if (stopping_) return done(Error{"preforkd is stopping"}, "");
  if (rolling_) return done(Error{"busy: a rolling update is in progress"}, "");
  Batch batch(*this);
  if (slots.empty())
    for (int i = 0; i < static_cast<int>(slots_.size()); ++i) slots.push_back(i);
  for (int s : slots)
    if (s < 0 || s >= static_cast<int>(slots_.size()) || slots_[static_cast<std::size_t>(s)].removing)
      return done(Error{"no worker slot " + std::to_string(s)}, "");
  rolling_ = std::make_unique<RollingUpdate>();
  rolling_->target = std::move(gen);
  rolling_->previous = gen_;
  rolling_->pending.assign(slots.begin(), slots.end());
  rolling_->done = std::move(done);
  spdlog::info("rolling update to generation {}: {} workers, {} at a time", rolling_->target->number, slots.size(),
               rolling_->target->worker.max_surge);
}

// Processes beyond the worker count: new runs still starting and replaced runs still
// stopping. A rolling update keeps this at most max_surge.
int Supervisor::extra_processes() const {
  int n = 0;
  for (const Slot& slot : slots_) {
    if (slot.candidate && has_process(slot.candidate->life.state)) ++n;
    for (const auto& r : slot.retiring) n += has_process(r->life.state) ? 1 : 0;
  }
  return n;
}

void Supervisor::pump_rolling() {
  RollingUpdate& r = *rolling_;
  while (std::max(r.in_flight, extra_processes()) < r.target->worker.max_surge && !r.pending.empty()) {
    const int s = r.pending.front();
    r.pending.pop_front();
    Slot& slot = slots_[static_cast<std::size_t>(s)];
    slot.candidate = make_run(s, r.target);
    ++r.in_flight;
    dispatch(*slot.candidate, Event::of(Event::Kind::start));
    if (!rolling_) return;  // finished or aborted inside
  }
  if (r.in_flight > 0 || !r.pending.empty()) return;
  // Done once the replaced workers have stopped too.
  for (int s : r.switched)
    if (!slots_[static_cast<std::size_t>(s)].retiring.empty()) return;
  if (!r.failure.empty()) {
    finish_rolling(Error{r.failure}, "");
  } else {
    finish_rolling(Ok{}, std::to_string(r.switched.size()) + " workers replaced");
  }
}

namespace {

std::string why_not_ready(const WorkerRun& run, const Event& cause) {
  const std::string who = "worker " + std::to_string(run.slot);
  switch (cause.kind) {
    case Event::Kind::exited:
      return who + " " + describe(cause.status) + " before it was ready";
    case Event::Kind::timer:
      return who + " was not ready within " + format_duration(run.gen->worker.ready_timeout);
    case Event::Kind::spawn_failed:
      return who + " could not be started";
    case Event::Kind::watchdog_expired:
      return who + " missed its watchdog before it was ready";
    case Event::Kind::start:
    case Event::Kind::spawned:
    case Event::Kind::ready_notified:
    case Event::Kind::stop:
    case Event::Kind::kill:
      break;
  }
  return who + " did not become ready";
}

}  // namespace

void Supervisor::after_candidate_change(WorkerRun& run, const Event& cause) {
  if (!rolling_) return;
  RollingUpdate& r = *rolling_;
  Slot& slot = slots_[static_cast<std::size_t>(run.slot)];
  const WorkerState state = run.life.state;
  if (state == WorkerState::starting) return;
  --r.in_flight;
  if (state == WorkerState::ready) {
    // The switch: the new run takes the slot, the old one stops gracefully.
    std::unique_ptr<WorkerRun> old = std::move(slot.current);
    slot.current = std::move(slot.candidate);
    r.switched.push_back(run.slot);
    if (old && has_process(old->life.state)) {
      dispatch(*old, Event::stop_for(StopIntent::remove));
      slot.retiring.push_back(std::move(old));
    } else {
      retire(std::move(old));
    }
    return;
  }
  // It failed before it was ready: the update is over.
  std::unique_ptr<WorkerRun> failed = std::move(slot.candidate);
  if (has_process(failed->life.state)) {
    dispatch(*failed, Event::stop_for(StopIntent::remove));
    slot.retiring.push_back(std::move(failed));
  } else {
    retire(std::move(failed));
  }
  if (r.rolling_back) {
    spdlog::error("rollback failed too: {}", why_not_ready(run, cause));
    r.pending.clear();
    return;
  }
  r.failure = why_not_ready(run, cause);
  spdlog::error("rolling update to generation {} failed: {}; rolling back", r.target->number, r.failure);
  for (auto& other : slots_) {
    if (!other.candidate) continue;
    --r.in_flight;
    std::unique_ptr<WorkerRun> c = std::move(other.candidate);
    if (has_process(c->life.state)) {
      dispatch(*c, Event::stop_for(StopIntent::remove));
      other.retiring.push_back(std::move(c));
    } else {
      retire(std::move(c));
    }
  }
  r.pending.assign(r.switched.begin(), r.switched.end());
  r.switched.clear();
  r.rolling_back = true;
  r.target = r.previous;
}

void Supervisor::finish_rolling(Status result, std::string message) {
  std::unique_ptr<RollingUpdate> r = std::move(rolling_);
  if (result) gen_ = r->target;
  // A rolled-back update leaves gen_ as it was.
  if (r->done) r->done(std::move(result), std::move(message));
}

void Supervisor::adopt(std::shared_ptr<const Generation> gen) {
  Batch batch(*this);
  gen_ = gen;
  for_each_run([&](WorkerRun& run) { run.gen = gen; });
}

}  // namespace preforkd::daemon
