// Hung-worker detection: samples queues and workers, asks core/stall_plan, replaces.

#include <preforkd/daemon/watch/stall_watch.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

namespace preforkd::daemon {

namespace {

// With stall_timeout = "0s": how often to see whether a reload turned it on.
constexpr Duration off_check = std::chrono::seconds(1);

Duration since_epoch(Clock::time_point t) { return std::chrono::duration_cast<Duration>(t.time_since_epoch()); }

// "3 connections queued, none taken for 1.2s"
std::string stall_note(int queued, Duration waited) {
  return fmt::format("{} connection{} queued, none taken for {:.1f}s", queued, queued == 1 ? "" : "s",
                     std::chrono::duration<double>(waited).count());
}

}  // namespace

Result<std::unique_ptr<StallWatch>> StallWatch::open(uv_loop_t* loop, Supervisor& supervisor, Balancer& balancer) {
  std::unique_ptr<StallWatch> self(new StallWatch(supervisor, balancer));
  StallWatch* raw = self.get();
  auto timer = Timer::open(loop, [raw] { raw->on_timer(); });
  if (!timer) return Error{"stall watch timer: " + timer.error()};
  self->timer_ = std::move(*timer);
  return self;
}

void StallWatch::start() { timer_->start(off_check); }

int StallWatch::queued(int slot) const {
  const os::ListenerSet& listeners = supervisor_.listeners();
  int total = 0;
  for (std::size_t l = 0; l < listeners.configs().size(); ++l) {
    const ListenConfig& c = listeners.configs()[l];
    if (c.mode != ListenMode::reuseport || c.address.family == AddressFamily::unix_path) continue;
    total += std::max(listeners.accept_queue_depth(l, slot), 0);
  }
  return total;
}

void StallWatch::on_timer() {
  const Duration timeout = supervisor_.generation().worker.stall_timeout;
  if (timeout <= Duration::zero() || supervisor_.stopping()) {
    slots_.clear();
    timer_->start(off_check);
    return;
  }
  const StallCadence cadence = stall_cadence(timeout);
  const auto now = Clock::now();
  const bool full_look = now >= next_full_look_;
  if (full_look) next_full_look_ = now + cadence.idle;

  const std::vector<SlotView> slots = supervisor_.view();
  slots_.resize(slots.size());
  struct Found {
    int slot;
    pid_t pid;
    std::string note;
  };
  std::vector<Found> stalled;
  bool any_open = false;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const SlotView& slot = slots[i];
    Watched& w = slots_[i];
    const std::optional<RunView>& run = slot.current;
    // Only a ready worker alone in its slot: a starting one has ready_timeout, and during
    // a rolling update the candidate shares the socket, so the queue is not the worker's.
    const bool watched = run && run->pid > 0 && run->state == WorkerState::ready && !slot.candidate &&
                         !slot.removing;
    if (!watched || w.pid != run->pid) w = Watched{watched ? run->pid : -1, StallWindow{}};
    if (!watched || (!full_look && !w.window.open)) continue;
    const int slot_number = static_cast<int>(i);
    StallSample sample{since_epoch(now), queued(slot_number), Activity::unknown};
    // /proc is read only for a slot whose queue holds connections.
    if (sample.queued > 0) sample.activity = balancer_.activity_of(slot_number);
    const StallVerdict v = judge_stall(w.window, sample, timeout);
    w.window = v.next;
    any_open = any_open || w.window.open;
    if (v.stalled) stalled.push_back({slot_number, w.pid, stall_note(v.queued, v.waited)});
  }
  const auto until_full = std::chrono::duration_cast<Duration>(next_full_look_ - now);
  timer_->start(any_open ? cadence.busy : std::clamp(until_full, Duration(1), cadence.idle));
  // After the walk: replacing a worker changes the slots.
  for (Found& f : stalled) supervisor_.submit(Stalled{f.slot, f.pid, std::move(f.note)});
}

}  // namespace preforkd::daemon
