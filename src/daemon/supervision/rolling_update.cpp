// Rolling updates (reload and restart): the plan is pure (core/rolling_plan); this file
// turns what happens to candidates and replaced runs into its events and carries out
// its actions.

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"
#include <preforkd/core/message_text.hpp>

#include <spdlog/spdlog.h>

namespace preforkd::daemon {

void Supervisor::roll(std::shared_ptr<const Generation> gen, std::vector<int> slots, Done done,
                      std::unique_ptr<os::ListenerSet> listeners) {
  begin_roll(std::move(gen), std::move(slots), std::move(done), std::move(listeners), {});
}

void Supervisor::recycle(std::vector<int> slots, std::vector<ReplaceReason> reasons, Done done) {
  std::map<int, ReplaceReason> why;
  for (std::size_t i = 0; i < slots.size() && i < reasons.size(); ++i) why[slots[i]] = reasons[i];
  if (slots.empty() || why.size() != slots.size()) return done(Error{"nothing to recycle"}, "");
  begin_roll(gen_, std::move(slots), std::move(done), nullptr, std::move(why));
}

void Supervisor::begin_roll(std::shared_ptr<const Generation> gen, std::vector<int> slots, Done done,
                            std::unique_ptr<os::ListenerSet> listeners, std::map<int, ReplaceReason> slot_reasons) {
  if (stopping_) return done(Error{"preforkd is stopping"}, "");
  // daemon/operations serialises operations: a roll never meets another one.
  if (rolling_) return done(Error{"a rolling update is in progress (operations must come one at a time)"}, "");
  // All: every live slot. One a scale down is removing goes anyway; slots the adaptive pool
  // parked run nothing to replace: a worker started there later is of the generation then
  // current (pool_start).
  if (slots.empty())
    for (int i = 0; i < static_cast<int>(slots_.size()); ++i)
      if (!slots_[static_cast<std::size_t>(i)].removing && !slots_[static_cast<std::size_t>(i)].parked)
        slots.push_back(i);
  if (slots.empty()) return done(Ok{}, "no worker to replace (the pool runs none)");
  for (int s : slots)
    if (s < 0 || s >= static_cast<int>(slots_.size()) || slots_[static_cast<std::size_t>(s)].removing)
      return done(Error{"no worker slot " + std::to_string(s)}, "");
  rolling_ = std::make_unique<RollingUpdate>();
  rolling_->plan = RollingPlan::of(slots, gen->worker.max_surge);
  // Runs of an earlier update still stopping count against max_surge too.
  for (std::size_t i = 0; i < slots_.size(); ++i)
    for (std::size_t n = 0; n < slots_[i].retiring.size(); ++n) rolling_->plan.stopping.push_back(static_cast<int>(i));
  rolling_->target = std::move(gen);
  rolling_->previous = gen_;
  // The same generation again is a restart; a reload always brings a new one.
  rolling_->reason = rolling_->target == rolling_->previous ? ReplaceReason::restart : ReplaceReason::reload;
  rolling_->listeners = std::move(listeners);
  rolling_->slot_reasons = std::move(slot_reasons);
  rolling_->done = std::move(done);
  // A recycle says why in the recycler's own line.
  if (rolling_->slot_reasons.empty())
    log_with({.generation = rolling_->target->number}, spdlog::level::info,
             "rolling update to generation {}: {}, {} at a time", rolling_->target->number,
             plural(static_cast<std::int64_t>(slots.size()), "worker"), rolling_->target->worker.max_surge);
  roll_event(RollEvent{});
  run_queue();
}

namespace {

std::string why_not_ready(const WorkerRun& run, const Event& cause) {
  const std::string who = "worker " + std::to_string(run.slot);
  switch (cause.kind) {
    case Event::Kind::exited:
      return who + " " + describe(cause.status) + " before it was ready";
    case Event::Kind::timer:
      return who + " was not ready within " + exact_duration(run.gen->worker.ready_timeout) +
             not_ready_hint(run.gen->worker.ready.kind);
    case Event::Kind::spawn_failed:
      return who + " could not be started: " + run.spawn_error;
    case Event::Kind::watchdog_expired:
      return who + " missed its watchdog before it was ready";
    case Event::Kind::start:
    case Event::Kind::spawned:
    case Event::Kind::ready_notified:
    case Event::Kind::stop:
    case Event::Kind::kill:
    case Event::Kind::seen_accepting:
    case Event::Kind::stalled:  // only a ready run can stall
      break;
  }
  return who + " did not become ready";
}

}  // namespace

void Supervisor::after_candidate_change(WorkerRun& run, const Event& cause) {
  if (!rolling_) return;
  const WorkerState state = run.life.state;
  if (state == WorkerState::starting) return;
  RollEvent e;
  e.slot = run.slot;
  if (state == WorkerState::ready) {
    e.kind = RollEvent::Kind::candidate_ready;
  } else {
    e.kind = RollEvent::Kind::candidate_failed;
    e.reason = why_not_ready(run, cause);
  }
  roll_event(std::move(e));
}

// The plan's events join the executor's one queue: an action that causes a plan event
// (a candidate that cannot even be made) queues it rather than stepping the plan inside
// its own step, and events for runs and for the plan are handled in the order they came.
void Supervisor::roll_event(RollEvent event) { queue_.post(Queued{nullptr, Event{}, std::move(event)}); }

void Supervisor::step_roll(const RollEvent& e) {
  if (!rolling_) {
    // Posted before the update finished (a run gone, a candidate's last change): the plan
    // that waited for it is complete, so it changes nothing. Said, not dropped unseen.
    spdlog::debug("rolling update: an event for slot {} after the update finished changes nothing", e.slot);
    return;
  }
  RollTransition t = roll_step(rolling_->plan, e);
  rolling_->plan = std::move(t.next);
  for (const RollAction& a : t.actions) {
    if (!rolling_) break;  // finished: nothing after it in the same transition
    carry_out(a);
  }
}

void Supervisor::carry_out(const RollAction& a) {
  RollingUpdate& r = *rolling_;
  switch (a.kind) {
    case RollAction::Kind::start_candidate: {
      auto run = make_run(a.slot, a.target == RollTarget::next ? r.target : r.previous);
      if (!run) {
        // As if it had failed at once: the plan rolls back.
        RollEvent failed;
        failed.kind = RollEvent::Kind::candidate_failed;
        failed.slot = a.slot;
        failed.reason = run.error();
        roll_event(std::move(failed));
        return;
      }
      Slot& slot = slots_[static_cast<std::size_t>(a.slot)];
      slot.candidate = std::move(*run);
      post(*slot.candidate, Event::start_trial());
      return;
    }
    case RollAction::Kind::switch_slot: {
      // The new run takes the slot, the old one stops gracefully.
      Slot& slot = slots_[static_cast<std::size_t>(a.slot)];
      std::unique_ptr<WorkerRun> old = std::move(slot.current);
      slot.current = std::move(slot.candidate);
      const auto recycled = r.slot_reasons.find(a.slot);
      slot.count_replacement(recycled != r.slot_reasons.end() ? recycled->second : r.reason);
      put_out(slot, std::move(old));
      return;
    }
    case RollAction::Kind::drop_candidate: {
      Slot& slot = slots_[static_cast<std::size_t>(a.slot)];
      if (!slot.candidate) {
        // It was never made: nothing to wait for.
        RollEvent gone;
        gone.kind = RollEvent::Kind::run_gone;
        gone.slot = a.slot;
        roll_event(std::move(gone));
        return;
      }
      put_out(slot, std::move(slot.candidate));
      return;
    }
    case RollAction::Kind::report_failure:
      // A failed recycle is no rollback: the old worker never stopped (the recycler logs it).
      if (!r.slot_reasons.empty()) return;
      log_with({.generation = r.target->number}, spdlog::level::err,
               "rolling update to generation {} failed: {}; rolling back", r.target->number, a.message);
      ++rollbacks_;
      return;
    case RollAction::Kind::report_rollback_failure:
      log_with({.generation = r.target->number}, spdlog::level::err, "rollback failed too: {}", a.message);
      return;
    case RollAction::Kind::finish: {
      std::unique_ptr<RollingUpdate> done = std::move(rolling_);
      // A rolled-back update leaves the generation and the sockets as they were.
      if (a.ok) {
        gen_ = done->target;
        if (done->listeners) listeners_ = std::move(done->listeners);
      }
      if (done->done) done->done(a.ok ? Status(Ok{}) : Status(Error{a.message}), a.ok ? a.message : std::string());
      return;
    }
  }
}

Result<std::unique_ptr<os::ListenerSet>> Supervisor::reopen_listeners(const std::vector<ListenConfig>& configs) {
  auto reopened = os::ListenerSet::reopen(configs, *listeners_);
  if (!reopened) return Error{reopened.error()};
  return std::make_unique<os::ListenerSet>(std::move(*reopened));
}

void Supervisor::adopt(std::shared_ptr<const Generation> gen) {
  gen_ = gen;
  for_each_run([&](WorkerRun& run) { run.gen = gen; });
  run_queue();
}

}  // namespace preforkd::daemon
