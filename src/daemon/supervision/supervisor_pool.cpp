// The adaptive pool's two moves on the slots ([worker] pool = "dynamic" | "ondemand"):
// start a worker in a parked slot, or park a slot whose worker then stops. What to do and
// when is decided elsewhere (core/pool_plan, daemon/operations/pool); a parked slot keeps
// its sockets, steered around as a crashed slot's are.

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"

#include <spdlog/spdlog.h>

namespace preforkd::daemon {

namespace {

// As long as a scaled-away slot's queue is served: a retired worker serves what is
// queued on its socket before it stops.
constexpr Duration retire_drain_max = std::chrono::seconds(2);

}  // namespace

bool Supervisor::starts_parked(int slot) const {
  const PoolConfig& pool = gen_->worker.pool;
  return pool.mode != PoolMode::fixed && slot >= pool.min_count;
}

bool Supervisor::pool_may_act() const {
  if (stopping_ || rolling_) return false;
  for (const Slot& slot : slots_)
    if (slot.removing) return false;
  return static_cast<int>(slots_.size()) == target_count_;
}

Status Supervisor::pool_start(const std::vector<int>& slots) {
  if (!pool_may_act()) return Error{"busy: another operation is in progress"};
  for (int s : slots) {
    if (s < 0 || s >= static_cast<int>(slots_.size())) return Error{fmt::format("no worker slot {}", s)};
    Slot& slot = slots_[static_cast<std::size_t>(s)];
    if (!slot.parked) continue;
    slot.parked = false;
    slot.drain_until = {};
    WorkerRun& run = *slot.current;
    if (run.life.state == WorkerState::stopping) {
      // Retired but still stopping: a replacement follows it.
      post(run, Event::replace_for(ReplaceReason::scale));
      continue;
    }
    if (has_process(run.life.state)) continue;  // retired, still draining: it keeps serving
    // A run parked before a reload is of an older generation: the new worker is of this one.
    if (run.gen != gen_) {
      auto fresh = make_run(s, gen_);
      if (!fresh) return Error{fresh.error()};
      retire(std::move(slot.current));
      slot.current = std::move(*fresh);
    }
    post(*slot.current, Event::of(Event::Kind::start));
  }
  run_queue();
  return Ok{};
}

Status Supervisor::pool_retire(int s) {
  if (!pool_may_act()) return Error{"busy: another operation is in progress"};
  if (s < 0 || s >= static_cast<int>(slots_.size())) return Error{fmt::format("no worker slot {}", s)};
  Slot& slot = slots_[static_cast<std::size_t>(s)];
  if (slot.parked) return Ok{};
  slot.parked = true;
  slot.drain_until = Clock::now() + retire_drain_max;
  // No new connection reaches it from here on; remove_drained_slots() stops its worker
  // once the queue is served.
  update_steering();
  run_queue();
  return Ok{};
}

}  // namespace preforkd::daemon
