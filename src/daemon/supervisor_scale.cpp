// Scaling: new slots at the end, removed slots from the end (so the reuseport group
// keeps its order), and a removed slot's queue drained before its worker stops.

#include <preforkd/daemon/supervisor.hpp>

#include <preforkd/core/limits.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace preforkd::daemon {

namespace {

constexpr Duration drain_poll = std::chrono::milliseconds(20);
constexpr Duration drain_max = std::chrono::seconds(2);

}  // namespace

Status Supervisor::scale(int count) {
  if (stopping_) return Error{"preforkd is stopping"};
  if (rolling_) return Error{"busy: a rolling update is in progress"};
  if (count < 1 || count > max_workers) return Error{fmt::format("the worker count must be from 1 to {}, got {}", max_workers, count)};
  if (std::ranges::any_of(slots_, [](const Slot& s) { return s.removing; }))
    return Error{"busy: removed workers are still stopping"};
  const int before = static_cast<int>(slots_.size());
  if (count == before) return Ok{};
  Batch batch(*this);
  if (count > before) {
    // New sockets join the end of each group; steering keeps them out until their
    // workers run.
    if (Status grown = gen_->listeners->grow(count); !grown) return grown;
    update_steering();
    target_count_ = count;
    slots_.resize(static_cast<std::size_t>(count));
    for (int i = before; i < count; ++i) slots_[static_cast<std::size_t>(i)].current = make_run(i, gen_);
    spdlog::info("scaling from {} to {} workers", before, count);
    for (int i = before; i < count; ++i) dispatch(*slots_[static_cast<std::size_t>(i)].current, Event::of(Event::Kind::start));
    return Ok{};
  }
  spdlog::info("scaling from {} to {} workers: stopping workers {} to {}", before, count, count, before - 1);
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
  remove_drained_slots();
  return Ok{};
}

void Supervisor::remove_drained_slots() {
  bool waiting = false;
  const auto now = Clock::now();
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (!slot.removing || slot.drain_until == Clock::time_point{}) continue;
    bool queued = false;
    for (std::size_t l = 0; l < gen_->listeners->configs().size(); ++l)
      queued = queued || gen_->listeners->accept_queue_depth(l, static_cast<int>(i)) > 0;
    const bool has_worker = slot.current && slot.current->life.state == WorkerState::ready;
    if (queued && has_worker && now < slot.drain_until) {
      waiting = true;
      continue;
    }
    slot.drain_until = {};
    if (slot.current) dispatch(*slot.current, Event::stop_for(StopIntent::remove));
  }
  // Slots go from the end only, once their runs have no process left.
  int shrink_to = static_cast<int>(slots_.size());
  while (!slots_.empty()) {
    Slot& last = slots_.back();
    if (!last.removing || last.drain_until != Clock::time_point{}) break;
    bool alive = !last.retiring.empty() || (last.current && has_process(last.current->life.state));
    if (alive) break;
    retire(std::move(last.current));
    slots_.pop_back();
    --shrink_to;
  }
  if (shrink_to < gen_->listeners->slot_count()) {
    gen_->listeners->shrink(shrink_to);
    spdlog::info("now running {} workers", shrink_to);
  }
  if (waiting) drain_timer_->start(drain_poll);
}

}  // namespace preforkd::daemon
