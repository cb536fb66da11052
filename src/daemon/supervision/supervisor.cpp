// The supervisor's core: runs made and started, the executor's one loop, worker exits,
// steering, runs retired, and the stop. Actions are carried out in supervisor_actions.cpp,
// processes started in supervisor_spawn.cpp.

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"

#include <preforkd/core/message_text.hpp>
#include <preforkd/os/sys_error.hpp>
#include <preforkd/os/children.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <unistd.h>

extern char** environ;

namespace preforkd::daemon {

namespace {

std::vector<std::string> copy_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

}  // namespace

Supervisor::Supervisor(uv_loop_t* loop, std::shared_ptr<const Generation> gen, os::ListenerSet listeners)
    : loop_(loop),
      gen_(std::move(gen)),
      listeners_(std::make_unique<os::ListenerSet>(std::move(listeners))),
      master_env_(copy_environment()),
      rng_(std::random_device{}()) {}

Supervisor::~Supervisor() = default;

LogFields log_fields(const WorkerRun& run) {
  LogFields f;
  f.slot = run.slot;
  if (const pid_t pid = run.pid > 0 ? run.pid : run.last_pid; pid > 0) f.worker_pid = pid;
  if (run.gen) f.generation = run.gen->number;
  return f;
}

std::string Supervisor::who(const WorkerRun& run) const {
  if (run.pid > 0) return fmt::format("worker {} (pid {})", run.slot, run.pid);
  return fmt::format("worker {}", run.slot);
}

int Supervisor::ready_count() const {
  int n = 0;
  for (const auto& slot : slots_)
    if (!slot.removing && slot.current && slot.current->life.state == WorkerState::ready) ++n;
  return n;
}

Result<std::unique_ptr<WorkerRun>> Supervisor::make_run(int slot, std::shared_ptr<const Generation> gen) {
  auto run = std::make_unique<WorkerRun>();
  run->slot = slot;
  run->gen = std::move(gen);
  WorkerRun* raw = run.get();
  auto timer = Timer::open(loop_, [this, raw] {
    post(*raw, Event::of(Event::Kind::timer));
    run_queue();
  });
  if (!timer) return Error{fmt::format("worker {}: timer: {}", slot, timer.error())};
  auto watchdog = Timer::open(loop_, [this, raw] {
    post(*raw, Event::of(Event::Kind::watchdog_expired));
    run_queue();
  });
  if (!watchdog) return Error{fmt::format("worker {}: watchdog timer: {}", slot, watchdog.error())};
  run->timer = std::move(*timer);
  run->watchdog = std::move(*watchdog);
  return run;
}

Status Supervisor::start() {
  auto drain = Timer::open(loop_, [this] { run_queue(); });
  if (!drain) return Error{"drain timer: " + drain.error()};
  drain_timer_ = std::move(*drain);
  target_count_ = gen_->worker.count;
  slots_.resize(static_cast<std::size_t>(target_count_));
  if (const PoolConfig& pool = gen_->worker.pool; pool.mode != PoolMode::fixed)
    spdlog::info("starting {} of {} of '{}' (pool = \"{}\")", std::min(pool.min_count, target_count_),
                 plural(target_count_, "worker"), gen_->worker.command.front(), to_string(pool.mode));
  else
    spdlog::info("starting {} of '{}'", plural(target_count_, "worker"), gen_->worker.command.front());
  for (int i = 0; i < target_count_; ++i) {
    auto run = make_run(i, gen_);
    if (!run) return Error{run.error()};
    slots_[static_cast<std::size_t>(i)].current = std::move(*run);
  }
  for (int i = 0; i < target_count_; ++i) {
    Slot& slot = slots_[static_cast<std::size_t>(i)];
    slot.parked = starts_parked(i);
    if (!slot.parked) post(*slot.current, Event::of(Event::Kind::start));
  }
  run_queue();
  return Ok{};
}

void Supervisor::post(WorkerRun& run, Event event) { queue_.post(Queued{&run, std::move(event), std::nullopt}); }

// The one loop that carries out transitions. Every input posts its events and calls
// this; an event that an action causes joins the queue instead of being handled inside
// that action. Once the queue is empty the supervisor settles (finished runs go, slots
// drain, the rolling update moves on), which may queue more.
void Supervisor::run_queue() {
  if (queue_.draining()) return;
  graveyard_.clear();
  const bool ran = queue_.drain(
      [this](const Queued& q) {
        if (q.roll) return step_roll(*q.roll);
        apply(*q.run, q.event);
      },
      [this] { settle(); });
  // The replacements have started: what is left of the workers they replace goes now.
  kill_exited_cgroups();
  if (!ran) return;
  publish();
  if (stopping_) check_finished();
  // And what the slots' next starts need is made ahead.
  make_spare_cgroups();
}

void Supervisor::apply(WorkerRun& run, const Event& event) {
  const WorkerState before = run.life.state;
  Transition t = step(run.life, event, run.gen->policy);
  run.life = t.next;
  if (run.life.state == WorkerState::ready && before != WorkerState::ready) {
    run.reached_ready = true;
    log_with(log_fields(run), spdlog::level::debug, "{} is ready", who(run));
  }
  for (const Action& a : t.actions)
    for (Event& caused : perform(run, a)) post(run, std::move(caused));
  // A run that left its slot (removed with it) may still take its last events.
  if (run.slot >= static_cast<int>(slots_.size())) return;
  const Slot& slot = slots_[static_cast<std::size_t>(run.slot)];
  if (before != run.life.state && slot.candidate.get() == &run) after_candidate_change(run, event);
}

void Supervisor::settle() {
  collect_finished_runs();
  remove_drained_slots();
  collect_finished_runs();
}

const os::ListenerSet& Supervisor::listeners_for(const WorkerRun& run) const {
  // A rolling update's candidates of a generation with new sockets start on those.
  if (rolling_ && rolling_->listeners && run.gen == rolling_->target) return *rolling_->listeners;
  return *listeners_;
}

WorkerRun* Supervisor::find_run(pid_t pid) {
  auto it = by_pid_.find(pid);
  return it == by_pid_.end() ? nullptr : it->second;
}

void Supervisor::reap_children() {
  while (true) {
    auto exited = os::peek_exited_child();
    if (!exited) {
      spdlog::error("cannot look for exited workers: {}", exited.error());
      break;
    }
    if (!*exited) break;
    const pid_t pid = **exited;
    WorkerRun* run = find_run(pid);
    // The worker is a zombie, so its pid and process group are still reserved: whatever
    // it left behind in its group goes with it.
    if (run != nullptr) {
      send_signal(*run, -pid, SIGKILL);
      // And the rest of its tree: the descendants last seen now, its cgroup once the
      // replacement has started (run_queue).
      kill_tree_after_queue(*run);
    }
    auto status = os::reap(pid);
    if (!status) {
      // Never read as an exit: the process may still be there, and the next SIGCHLD retries.
      spdlog::error("cannot reap process {}: {}", pid, status.error());
      break;
    }
    if (run == nullptr) {
      spdlog::debug("reaped orphaned process {} ({})", pid, describe(*status));
      continue;
    }
    on_worker_exit(*run, *status);
  }
  run_queue();
  remove_dead_cgroups();
}

void Supervisor::on_worker_exit(WorkerRun& run, const ExitStatus& status) {
  by_pid_.erase(run.pid);
  if (run.out) run.out->drain();
  if (run.err) run.err->drain();
  run.watchdog->stop();
  // Kept in the run until its next process: report_exec_failed names it.
  const int exec_errno = run.exec_errno;
  // An exec failure is reported by step() (report_exec_failed), with what follows.
  if (exec_errno == 0) {
    const bool expected = run.life.state == WorkerState::stopping;
    const auto level = (expected || status.success()) ? spdlog::level::info : spdlog::level::warn;
    log_with(log_fields(run), level, "{} {}", who(run), describe(status));
  }
  // The slot's last exit only if step() finds it unplanned (report_crash).
  const char* cause = exec_errno != 0 ? exec_failed_cause : run.stall_note.empty() ? "" : "stalled";
  run.exit = LastExit{status, std::chrono::system_clock::now(), cause};
  Event e = Event::of(Event::Kind::exited);
  e.status = status;
  e.exec_errno = exec_errno;
  // An exec that failed never started the program: never count it as healthy.
  e.was_ready = run.reached_ready && exec_errno == 0;
  e.uptime = std::chrono::duration_cast<Duration>(Clock::now() - run.started);
  e.jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  run.last_pid = run.pid;
  run.pid = -1;
  post(run, e);
}

void Supervisor::update_steering() {
  std::vector<int> ready, starting;
  auto state_of = [](const std::unique_ptr<WorkerRun>& r) { return r ? r->life.state : WorkerState::stopped; };
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    if (slot.removing || slot.parked) continue;
    if (state_of(slot.current) == WorkerState::ready || state_of(slot.candidate) == WorkerState::ready)
      ready.push_back(static_cast<int>(i));
    else if (state_of(slot.current) == WorkerState::starting || state_of(slot.candidate) == WorkerState::starting)
      starting.push_back(static_cast<int>(i));
  }
  // Prefer ready workers; while none is ready, the starting ones will accept soon.
  // With no worker at all, steering is removed and connections wait for the next one.
  const std::vector<int>& live = !ready.empty() ? ready : starting;
  if (on_steer) return on_steer(live);  // the balancer narrows it to waiting workers
  if (auto s = listeners_->steer(live); !s) spdlog::warn("cannot steer connections: {}, ignoring", s.error());
}

void Supervisor::put_out(Slot& slot, std::unique_ptr<WorkerRun> run) {
  if (!run) return;
  // A stop is harmless for a run without a process: it just stays stopped.
  post(*run, Event::stop_for(StopIntent::remove));
  slot.retiring.push_back(std::move(run));
}

void Supervisor::collect_finished_runs() {
  std::vector<int> gone;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    for (auto it = slot.retiring.begin(); it != slot.retiring.end();) {
      // Not while an event for it is still queued (a stop put_out() posted).
      const bool queued = queue_.any_of([&](const Queued& q) { return !q.roll && q.run == it->get(); });
      if (queued || has_process((*it)->life.state)) {
        ++it;
        continue;
      }
      retire(std::move(*it));
      it = slot.retiring.erase(it);
      gone.push_back(static_cast<int>(i));
    }
  }
  // For the rolling update's plan, which waits for them (max_surge); without one no
  // run is replaced or dropped, so there is nobody to tell.
  if (!rolling_) return;
  for (int s : gone) {
    RollEvent e;
    e.kind = RollEvent::Kind::run_gone;
    e.slot = s;
    roll_event(std::move(e));
  }
}

void Supervisor::retire(std::unique_ptr<WorkerRun> run) {
  if (!run) return;
  run->timer->stop();
  run->watchdog->stop();
  // Its socket closes with it: nothing that arrives there now belongs to a live run.
  if (run->notify) run->notify->stop();
  // Freed when the next input starts: this one may have come from one of its timers.
  graveyard_.push_back(std::move(run));
}

void Supervisor::stop(StopMode mode) {
  if (stopping_ && mode == StopMode::graceful) return;
  stopping_ = true;
  if (drain_timer_) drain_timer_->stop();
  if (rolling_) {
    RollEvent abort;
    abort.kind = RollEvent::Kind::abort;
    abort.reason = "preforkd is stopping";
    roll_event(std::move(abort));
  }
  spdlog::info("stopping {} ({})", plural(static_cast<std::int64_t>(slots_.size()), "worker"), mode == StopMode::graceful ? "graceful" : "fast");
  const Event e = mode == StopMode::graceful ? Event::stop_for(StopIntent::remove) : Event::of(Event::Kind::kill);
  for_each_run([&](WorkerRun& r) { post(r, e); });
  run_queue();
}

void Supervisor::check_finished() {
  if (finished_) return;
  bool any = false;
  for_each_run([&](WorkerRun& r) { any = any || has_process(r.life.state); });
  if (any) return;
  // Every worker is gone; descendants that escaped their worker's process group were
  // re-parented to the master (a subreaper) and go now too.
  const auto orphans = os::list_children();
  for (pid_t pid : orphans)
    if (::kill(pid, SIGKILL) < 0 && errno != ESRCH)
      spdlog::warn("failed to send SIGKILL to orphaned process {}: {}", pid, os::errno_text(errno));
  if (!orphans.empty()) return;  // reap_children() calls again once they are reaped
  finished_ = true;
  if (on_finished) on_finished();
}

}  // namespace preforkd::daemon
