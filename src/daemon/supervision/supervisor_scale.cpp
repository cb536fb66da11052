// Scaling: the decisions are pure (core/scale_plan); this file gathers the slots' facts
// for it and carries its actions out. A scale sets a target: a later one overrides an
// earlier one still in progress, and slots still being removed are kept again when the
// count grows back.

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"

#include <preforkd/core/limits.hpp>
#include <preforkd/core/message_text.hpp>
#include <preforkd/core/scale_plan.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace preforkd::daemon {

namespace {

constexpr Duration drain_poll = std::chrono::milliseconds(20);
constexpr Duration drain_max = std::chrono::seconds(2);

std::string slot_range(int from, int to) {
  if (from == to) return fmt::format("worker {}", from);
  return fmt::format("workers {} to {}", from, to);
}

Duration since_epoch(Clock::time_point t) { return std::chrono::duration_cast<Duration>(t.time_since_epoch()); }

}  // namespace

std::vector<ScaleSlotFacts> Supervisor::scale_facts() const {
  std::vector<ScaleSlotFacts> out(slots_.size());
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    ScaleSlotFacts& f = out[i];
    f.removing = slot.removing;
    // Removed by a scale down, or parked by the adaptive pool (pool_retire): served the same way.
    f.draining = (slot.removing || slot.parked) && slot.drain_until != Clock::time_point{};
    f.drain_until = since_epoch(slot.drain_until);
    f.state = slot.current ? slot.current->life.state : WorkerState::stopped;
    // Only a slot that drains needs its sockets looked at.
    if (f.draining)
      for (std::size_t l = 0; l < listeners_->configs().size(); ++l)
        f.queued = f.queued || listeners_->accept_queue_depth(l, static_cast<int>(i)) > 0;
    f.has_process = !slot.retiring.empty() || (slot.current && has_process(slot.current->life.state));
    f.event_waiting = queue_.any_of([&](const Queued& q) { return !q.roll && q.run == slot.current.get(); });
  }
  return out;
}

Status Supervisor::scale(int count) {
  if (stopping_) return Error{"preforkd is stopping"};
  // daemon/operations serialises operations: a scale never meets a rolling update.
  if (rolling_) return Error{"a rolling update is in progress (operations must come one at a time)"};
  if (count < 1 || count > max_workers) return Error{fmt::format("the worker count must be from 1 to {}, got {}", max_workers, count)};
  const int before = target_count_;
  if (count == before) return Ok{};
  const int present = static_cast<int>(slots_.size());  // includes slots still being removed
  const std::vector<ScaleAction> plan =
      plan_scale(scale_facts(), before, count, since_epoch(Clock::now()), drain_max);
  // New sockets join the end of each group; steering keeps them out until their
  // workers run. Made before anything changes, so that a failure changes nothing.
  std::vector<std::unique_ptr<WorkerRun>> added;
  if (count > before) {
    for (int i = present; i < count; ++i) {
      auto run = make_run(i, gen_);
      if (!run) return Error{run.error()};
      added.push_back(std::move(*run));
    }
    if (count > present) {
      if (Status grown = listeners_->grow(count); !grown) return grown;
      update_steering();
    }
    spdlog::info("scaling from {} to {}", before, plural(count, "worker"));
  } else {
    spdlog::info("scaling from {} to {}: stopping {}", before, plural(count, "worker"), slot_range(count, before - 1));
  }
  target_count_ = count;
  auto next_added = added.begin();
  for (const ScaleAction& a : plan) {
    if (a.kind == ScaleAction::Kind::add) {
      // In order from the end of the slots present.
      Slot& slot = slots_.emplace_back();
      slot.current = std::move(*next_added++);
      slot.parked = starts_parked(a.slot);
      if (!slot.parked) post(*slot.current, Event::of(Event::Kind::start));
      continue;
    }
    Slot& slot = slots_[static_cast<std::size_t>(a.slot)];
    switch (a.kind) {
      case ScaleAction::Kind::keep:
      case ScaleAction::Kind::take_back:
      case ScaleAction::Kind::start_again:
        slot.removing = false;
        slot.drain_until = {};
        if (a.kind == ScaleAction::Kind::take_back) post(*slot.current, Event::replace_for(ReplaceReason::scale));
        if (a.kind == ScaleAction::Kind::start_again) {
          if (a.counted) slot.count_replacement(ReplaceReason::scale);
          post(*slot.current, Event::of(Event::Kind::start));
        }
        break;
      case ScaleAction::Kind::drain:
        slot.removing = true;
        slot.drain_until = Clock::time_point(std::chrono::duration_cast<Clock::duration>(a.until));
        break;
      case ScaleAction::Kind::add:
      case ScaleAction::Kind::stop:
      case ScaleAction::Kind::remove:
        break;  // settle_scale's
    }
  }
  // No new connection reaches a removed slot from here on; what is queued is served
  // before its worker is asked to stop.
  if (count < before) update_steering();
  run_queue();
  return Ok{};
}

void Supervisor::remove_drained_slots() {
  const ScaleSettle settle = settle_scale(scale_facts(), since_epoch(Clock::now()));
  int shrink_to = static_cast<int>(slots_.size());
  for (const ScaleAction& a : settle.actions) {
    Slot& slot = slots_[static_cast<std::size_t>(a.slot)];
    if (a.kind == ScaleAction::Kind::stop) {
      slot.drain_until = {};
      if (slot.current && slot.current->life.state != WorkerState::stopped)
        post(*slot.current, Event::stop_for(StopIntent::remove));
    } else if (a.kind == ScaleAction::Kind::remove) {
      // Always the last slot: they go from the end.
      retire(std::move(slot.current));
      slots_.pop_back();
      --shrink_to;
    }
  }
  if (cgroups_) cgroups_->drop_spares(shrink_to);
  if (shrink_to < listeners_->slot_count()) {
    listeners_->shrink(shrink_to);
    spdlog::info("now running {}", plural(shrink_to, "worker"));
  }
  if (settle.poll_again) drain_timer_->start(drain_poll);
}

}  // namespace preforkd::daemon
