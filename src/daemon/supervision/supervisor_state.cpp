// The supervisor's side of an in-place upgrade: its slots as state for the new image,
// and taking them back there. Only a quiet supervisor hands on (no rolling update, no
// stop, no slot being removed), so every slot has exactly one run, of the current
// generation, and the new image needs no rolling plan.

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"
#include <preforkd/core/message_text.hpp>

#include <spdlog/spdlog.h>

#include <fcntl.h>

namespace preforkd::daemon {

namespace {

std::int64_t ms(Duration d) { return static_cast<std::int64_t>(d.count()); }

// A reason by its name; nullopt for a name this build does not know (it is dropped).
std::optional<ReplaceReason> replace_reason_named(const std::string& name) {
  for (ReplaceReason r : {ReplaceReason::reload, ReplaceReason::restart, ReplaceReason::scale, ReplaceReason::memory,
                          ReplaceReason::lifetime})
    if (name == to_string(r)) return r;
  return std::nullopt;
}

}  // namespace

std::string Supervisor::handoff_blocker() const {
  if (stopping_) return "preforkd is stopping";
  if (rolling_) return "a reload or restart is in progress";
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    if (slot.removing || slot.candidate || !slot.retiring.empty())
      return fmt::format("worker {} is still being replaced or removed", i);
    if (!slot.current) return fmt::format("worker {} has no run", i);
    if (slot.parked && has_process(slot.current->life.state))
      return fmt::format("worker {} is being retired by the adaptive pool", i);
  }
  if (static_cast<int>(slots_.size()) != target_count_) return "a scale is in progress";
  return "";
}

std::vector<SlotState> Supervisor::handoff() {
  // The new image makes its own spare cgroups; these would be left empty in its tree (and
  // if the exec fails, the next starts make new ones).
  if (cgroups_) cgroups_->drop_spares();
  std::vector<SlotState> out;
  const auto now = Clock::now();
  for (const Slot& slot : slots_) {
    SlotState s;
    WorkerRun& run = *slot.current;
    s.run.pid = run.pid;
    s.run.life = run.life;
    s.run.reached_ready = run.reached_ready;
    if (run.pid > 0) s.run.uptime_ms = ms(std::chrono::duration_cast<Duration>(now - run.started));
    if (auto left = run.timer->remaining()) s.run.timer_ms = ms(*left);
    if (auto left = run.watchdog->remaining()) s.run.watchdog_ms = ms(*left);
    s.run.stdout_fd = run.out ? run.out->fd() : -1;
    s.run.stderr_fd = run.err ? run.err->fd() : -1;
    if (run.notify) {
      s.run.notify_fd = run.notify->fd();
      s.run.notify_address = run.notify->address();
    }
    s.run.notify_status = run.notify_status;
    s.run.notified_stopping = run.notified_stopping;
    s.run.cpu = run.cpu;
    s.restarts = slot.restarts;
    if (slot.last_exit) {
      s.last_exit = LastExitState{slot.last_exit->status,
                                  std::chrono::duration<double>(slot.last_exit->when.time_since_epoch()).count(),
                                  slot.last_exit->cause};
    }
    s.crashes = slot.crashes;
    for (const auto& [reason, n] : slot.replaced_for) s.replaced_for[to_string(reason)] = n;
    s.had_process = slot.had_process;
    out.push_back(std::move(s));
  }
  return out;
}

Status Supervisor::resume(const std::vector<SlotState>& handed) {
  auto drain = Timer::open(loop_, [this] { run_queue(); });
  if (!drain) return Error{"drain timer: " + drain.error()};
  drain_timer_ = std::move(*drain);
  target_count_ = static_cast<int>(handed.size());
  slots_.resize(handed.size());
  const auto now = Clock::now();
  for (std::size_t i = 0; i < handed.size(); ++i) {
    const SlotState& h = handed[i];
    Slot& slot = slots_[i];
    auto made = make_run(static_cast<int>(i), gen_);
    if (!made) return Error{made.error()};
    WorkerRun& run = **made;
    slot.current = std::move(*made);
    slot.restarts = h.restarts;
    if (h.last_exit) {
      const auto when = std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::duration<double>(h.last_exit->unix_time));
      slot.last_exit = LastExit{h.last_exit->status, std::chrono::system_clock::time_point(when), h.last_exit->cause};
    }
    slot.crashes = h.crashes;
    for (const auto& [name, n] : h.replaced_for) {
      if (const auto reason = replace_reason_named(name)) {
        slot.replaced_for[*reason] = n;
        slot.replacements += n;
      }
    }
    slot.had_process = h.had_process;
    run.life = h.run.life;
    run.pid = h.run.pid;
    run.reached_ready = h.run.reached_ready;
    run.started = now - Duration(h.run.uptime_ms);
    run.started_wall = std::chrono::system_clock::now() - Duration(h.run.uptime_ms);
    run.notify_status = h.run.notify_status;
    run.notified_stopping = h.run.notified_stopping;
    run.cpu = h.run.cpu;
    // A slot an adaptive pool left without a worker stays so (the handed state has no flag).
    slot.parked = gen_->worker.pool.mode != PoolMode::fixed && run.life.state == WorkerState::stopped;
    if (run.pid > 0) adopt_cgroup(run);
    // Its own notify socket (a run of a format-1 image has none: it uses the shared one).
    if (h.run.notify_fd >= 0)
      if (Status st = adopt_notify_socket(run, h.run.notify_fd, h.run.notify_address); !st) return st;
    for (int fd : {h.run.stdout_fd, h.run.stderr_fd})
      if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    read_output(run, os::Fd(h.run.stdout_fd), os::Fd(h.run.stderr_fd));
    if (run.pid > 0) by_pid_[run.pid] = &run;
    if (h.run.timer_ms) run.timer->start(Duration(*h.run.timer_ms));
    if (h.run.watchdog_ms) run.watchdog->start(Duration(*h.run.watchdog_ms));
  }
  log_with({.generation = gen_->number}, spdlog::level::info, "took over {} of '{}' (generation {})",
           plural(static_cast<std::int64_t>(handed.size()), "worker"), gen_->worker.command.front(), gen_->number);
  update_steering();
  // Workers that exited while the new image started are zombies of this same process.
  reap_children();
  publish();
  return Ok{};
}

}  // namespace preforkd::daemon
