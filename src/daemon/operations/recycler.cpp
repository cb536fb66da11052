// Recycling: looks at the slots after each usage sample and at lifetime deadlines, asks
// core/recycle_plan, and recycles through the supervisor's one-slot rolling updates.

#include <preforkd/daemon/operations/recycler.hpp>

#include <preforkd/daemon/log/logging.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace preforkd::daemon {

namespace {

Duration since_epoch(Clock::time_point t) { return std::chrono::duration_cast<Duration>(t.time_since_epoch()); }

ReplaceReason reason_of(RecycleCause c) {
  switch (c) {
    case RecycleCause::memory: return ReplaceReason::memory;
    case RecycleCause::lifetime: return ReplaceReason::lifetime;
  }
  return ReplaceReason::restart;
}

std::string who(int slot, pid_t pid) { return fmt::format("worker {} (pid {})", slot, pid); }
LogFields fields(const RecycleOrder& o) {
  return {.slot = o.slot, .worker_pid = o.pid};
}

}  // namespace

Result<std::unique_ptr<Recycler>> Recycler::open(uv_loop_t* loop, Supervisor& supervisor, Operations& operations) {
  std::unique_ptr<Recycler> self(new Recycler(supervisor, operations));
  Recycler* raw = self.get();
  auto timer = Timer::open(loop, [raw] { raw->look(std::nullopt); });
  if (!timer) return Error{"recycler timer: " + timer.error()};
  self->timer_ = std::move(*timer);
  return self;
}

void Recycler::on_sample(Clock::time_point at) { look(at); }

void Recycler::look(std::optional<Clock::time_point> sampled_at) {
  if (supervisor_.stopping()) return;
  const auto now = Clock::now();
  const WorkerConfig& config = supervisor_.generation().worker;
  const RecycleLimits limits{config.max_memory, config.max_lifetime, config.max_surge};
  const std::vector<SlotView> slots = supervisor_.view();
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<RecycleView> views(slots.size());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const SlotView& slot = slots[i];
    const std::optional<RunView>& run = slot.current;
    if (!run || run->pid <= 0) continue;
    RecycleView& v = views[i];
    v.pid = run->pid;
    v.started = since_epoch(run->started);
    // Alone in its slot: no replacement starting, no older run still stopping, not scaled away.
    v.eligible = run->state == WorkerState::ready && !slot.candidate && slot.retiring.empty() && !slot.removing;
    if (sampled_at && run->usage.memory_sampled == *sampled_at) v.uss = run->usage.uss_bytes;
    v.jitter_draw = unit(rng_);
  }
  // Recycles yield to every other operation (core/operation_queue.hpp).
  const bool busy = operations_.busy();
  RecycleDecision d = plan_recycles(watches_, views, since_epoch(now), busy, limits);
  watches_ = std::move(d.next);
  last_.resize(slots.size());
  if (!d.recycle.empty()) start(d.recycle);
  arm(now);
}

void Recycler::start(const std::vector<RecycleOrder>& orders) {
  std::vector<int> slots;
  std::vector<ReplaceReason> reasons;
  for (const RecycleOrder& o : orders) {
    log_with(fields(o), spdlog::level::info, "{}: recycled: {}; its replacement starts beside it", who(o.slot, o.pid),
             recycle_text(o));
    slots.push_back(o.slot);
    reasons.push_back(reason_of(o.cause));
  }
  operations_.submit({OperationKind::recycle,
                      [this, slots = std::move(slots), reasons = std::move(reasons)](Done complete) {
                        supervisor_.recycle(slots, reasons, std::move(complete));
                      },
                      [this, orders](Status st, const std::string&) { finished(orders, st); }});
}

void Recycler::finished(const std::vector<RecycleOrder>& orders, const Status& result) {
  const auto now = since_epoch(Clock::now());
  for (const RecycleOrder& o : orders) {
    const auto i = static_cast<std::size_t>(o.slot);
    const std::optional<SlotView> slot = supervisor_.view_of(o.slot);
    const RunView* run = slot && slot->current ? &*slot->current : nullptr;
    const bool replaced = run != nullptr && run->pid != o.pid;
    if (replaced) {
      if (i < last_.size()) last_[i] = recycle_text(o);
      log_with(fields(o), spdlog::level::info, "{}: recycle done: worker {} (pid {}) serves in its place",
               who(o.slot, o.pid), o.slot, run->pid);
      continue;
    }
    if (i < watches_.size() && watches_[i].pid == o.pid) watches_[i] = after_failed_recycle(watches_[i], now);
    if (supervisor_.stopping()) continue;  // cut short by the stop: nothing to say
    log_with(fields(o), spdlog::level::warn, "{}: recycle failed: {}; it keeps serving, next try in {} at the earliest",
             who(o.slot, o.pid), result ? std::string("its replacement did not take over") : result.error(),
             format_duration(recycle_retry_after));
  }
  // On the loop, not inside the supervisor's step that called this.
  timer_->start(Duration::zero());
}

void Recycler::arm(Clock::time_point now) {
  if (operations_.running() == OperationKind::recycle) return;  // finished() wakes it
  const Duration at = since_epoch(now);
  Duration next = Duration::max();
  for (const RecycleWatch& w : watches_) {
    if (w.pid <= 0) continue;
    if (w.lifetime_ends > Duration::zero()) next = std::min(next, std::max(w.lifetime_ends, w.not_before));
  }
  if (next == Duration::max()) {
    timer_->stop();
    return;
  }
  // A deadline already past waits for its slot to be eligible: the next sample looks again.
  if (next <= at) return;
  timer_->start(next - at);
}

Recycler::Facts Recycler::facts(int slot) const {
  Facts f;
  if (slot < 0 || slot >= static_cast<int>(watches_.size())) return f;
  const auto i = static_cast<std::size_t>(slot);
  if (i < last_.size()) f.last = last_[i];
  const RecycleWatch& w = watches_[i];
  const std::optional<SlotView> view = supervisor_.view_of(slot);
  const RunView* run = view && view->current ? &*view->current : nullptr;
  if (run == nullptr || run->pid != w.pid || w.lifetime_ends <= Duration::zero()) return f;
  f.recycle_in_s = std::max(0.0, std::chrono::duration<double>(w.lifetime_ends - since_epoch(Clock::now())).count());
  return f;
}

}  // namespace preforkd::daemon
