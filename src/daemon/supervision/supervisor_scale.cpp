// Scaling: new slots at the end, removed slots from the end (so the reuseport group
// keeps its order), and a removed slot's queue drained before its worker stops. A scale
// sets a target: a later one overrides an earlier one still in progress, and slots
// still being removed are kept again when the count grows back.

#include <preforkd/daemon/supervision/supervisor.hpp>

#include <preforkd/core/limits.hpp>
#include <preforkd/core/message_text.hpp>

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

}  // namespace

Status Supervisor::scale(int count) {
  if (stopping_) return Error{"preforkd is stopping"};
  // daemon/operations serialises operations: a scale never meets a rolling update.
  if (rolling_) return Error{"a rolling update is in progress (operations must come one at a time)"};
  if (count < 1 || count > max_workers) return Error{fmt::format("the worker count must be from 1 to {}, got {}", max_workers, count)};
  const int before = target_count_;
  if (count == before) return Ok{};
  const int present = static_cast<int>(slots_.size());  // includes slots still being removed
  if (count > before) {
    // New sockets join the end of each group; steering keeps them out until their
    // workers run.
    std::vector<std::unique_ptr<WorkerRun>> added;
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
    target_count_ = count;
    // Slots still being removed are kept: their worker stays, or starts again.
    for (int i = before; i < std::min(count, present); ++i) {
      Slot& slot = slots_[static_cast<std::size_t>(i)];
      slot.removing = false;
      slot.drain_until = {};
      WorkerRun& run = *slot.current;
      if (run.life.state == WorkerState::stopping) {
        post(run, Event::replace_for(ReplaceReason::scale));
      } else if (!has_process(run.life.state)) {
        // Its process was stopped by the scale down; a new one replaces it.
        if (run.life.state == WorkerState::stopped) slot.count_replacement(ReplaceReason::scale);
        post(run, Event::of(Event::Kind::start));
      }
    }
    if (count > present) {
      slots_.resize(static_cast<std::size_t>(count));
      for (int i = present; i < count; ++i) {
        Slot& slot = slots_[static_cast<std::size_t>(i)];
        slot.current = std::move(added[static_cast<std::size_t>(i - present)]);
        post(*slot.current, Event::of(Event::Kind::start));
      }
    }
    run_queue();
    return Ok{};
  }
  spdlog::info("scaling from {} to {}: stopping {}", before, plural(count, "worker"), slot_range(count, before - 1));
  target_count_ = count;
  const auto deadline = Clock::now() + drain_max;
  for (int i = count; i < before; ++i) {
    Slot& slot = slots_[static_cast<std::size_t>(i)];
    slot.removing = true;
    slot.drain_until = deadline;
  }
  // No new connection reaches a removed slot from here on; what is queued is served
  // before its worker is asked to stop.
  update_steering();
  run_queue();
  return Ok{};
}

void Supervisor::remove_drained_slots() {
  bool waiting = false;
  const auto now = Clock::now();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (!slot.removing || slot.drain_until == Clock::time_point{}) continue;
    bool queued = false;
    for (std::size_t l = 0; l < listeners_->configs().size(); ++l)
      queued = queued || listeners_->accept_queue_depth(l, static_cast<int>(i)) > 0;
    const bool has_worker = slot.current && slot.current->life.state == WorkerState::ready;
    if (queued && has_worker && now < slot.drain_until) {
      waiting = true;
      continue;
    }
    slot.drain_until = {};
    if (slot.current && slot.current->life.state != WorkerState::stopped)
      post(*slot.current, Event::stop_for(StopIntent::remove));
  }
  // Slots go from the end only, once their runs have no process left and nothing is
  // queued for them.
  int shrink_to = static_cast<int>(slots_.size());
  while (!slots_.empty()) {
    Slot& last = slots_.back();
    if (!last.removing || last.drain_until != Clock::time_point{}) break;
    const bool alive = !last.retiring.empty() || (last.current && has_process(last.current->life.state));
    const bool queued = queue_.any_of([&](const Queued& q) { return q.run == last.current.get(); });
    if (alive || queued) break;
    retire(std::move(last.current));
    slots_.pop_back();
    --shrink_to;
  }
  if (cgroups_) cgroups_->drop_spares(shrink_to);
  if (shrink_to < listeners_->slot_count()) {
    listeners_->shrink(shrink_to);
    spdlog::info("now running {}", plural(shrink_to, "worker"));
  }
  if (waiting) drain_timer_->start(drain_poll);
}

}  // namespace preforkd::daemon
