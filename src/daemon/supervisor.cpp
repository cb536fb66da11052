#include <preforkd/daemon/supervisor.hpp>

#include <preforkd/core/worker_env.hpp>
#include <preforkd/os/children.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
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

Supervisor::Supervisor(uv_loop_t* loop, std::shared_ptr<const Generation> gen)
    : loop_(loop), gen_(std::move(gen)), master_env_(copy_environment()), rng_(std::random_device{}()) {
  drain_timer_ = std::make_unique<Timer>(loop_, [this] { Batch batch(*this); });
}

Supervisor::~Supervisor() = default;

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

std::unique_ptr<WorkerRun> Supervisor::make_run(int slot, std::shared_ptr<const Generation> gen) {
  auto run = std::make_unique<WorkerRun>();
  run->slot = slot;
  run->gen = std::move(gen);
  WorkerRun* raw = run.get();
  run->timer = std::make_unique<Timer>(loop_, [this, raw] { dispatch(*raw, Event::of(Event::Kind::timer)); });
  run->watchdog =
      std::make_unique<Timer>(loop_, [this, raw] { dispatch(*raw, Event::of(Event::Kind::watchdog_expired)); });
  return run;
}

void Supervisor::start() {
  Batch batch(*this);
  target_count_ = gen_->worker.count;
  slots_.resize(static_cast<std::size_t>(target_count_));
  for (int i = 0; i < target_count_; ++i) slots_[static_cast<std::size_t>(i)].current = make_run(i, gen_);
  for (auto& slot : slots_) dispatch(*slot.current, Event::of(Event::Kind::start));
  spdlog::info("starting {} workers of '{}'", target_count_, gen_->worker.command.front());
}

void Supervisor::dispatch(WorkerRun& run, const Event& event) {
  const WorkerState before = run.life.state;
  Transition t = step(run.life, event, run.gen->policy);
  run.life = t.next;
  const WorkerState after = run.life.state;
  if (after == WorkerState::ready && before != WorkerState::ready) {
    run.reached_ready = true;
    spdlog::debug("{} is ready", who(run));
  }
  if (event.kind == Event::Kind::timer && before == WorkerState::stopping)
    spdlog::warn("{} did not stop within {}; sending SIGKILL", who(run), format_duration(run.gen->worker.stop_timeout));
  if (after == WorkerState::failed && before != WorkerState::failed)
    spdlog::error("{} failed; not restarting it (preforkctl restart {} tries again)", who(run), run.slot);
  Batch batch(*this);
  for (const Action& a : t.actions) perform(run, a);
  if (before != after && slots_[static_cast<std::size_t>(run.slot)].candidate.get() == &run)
    after_candidate_change(run, event);
}

Supervisor::Batch::Batch(Supervisor& s) : s_(s), outer_(!s.in_batch_) { s_.in_batch_ = true; }

Supervisor::Batch::~Batch() {
  if (!outer_) return;
  s_.settle();
  s_.in_batch_ = false;
}

// Housekeeping once per outside input, when no caller up the stack holds a run: what
// it dispatches joins the same batch instead of settling again.
void Supervisor::settle() {
  graveyard_.clear();
  collect_finished_runs();
  remove_drained_slots();
  if (rolling_) pump_rolling();
  collect_finished_runs();
  update_steering();
  if (on_change) on_change();
  if (stopping_) check_finished();
}

void Supervisor::perform(WorkerRun& run, const Action& action) {
  switch (action.kind) {
    case Action::Kind::spawn:
      spawn_process(run);
      return;
    case Action::Kind::send_stop_signal:
      if (run.pid > 0) ::kill(run.pid, run.gen->worker.stop_signal);
      return;
    case Action::Kind::send_kill:
      if (run.pid > 0) {
        ::kill(-run.pid, SIGKILL);
        ::kill(run.pid, SIGKILL);
      }
      return;
    case Action::Kind::arm_timer:
      run.timer->start(action.delay);
      if (run.life.state == WorkerState::backoff)
        spdlog::info("worker {}: restarting in {} (crash {} in a row)", run.slot, format_duration(action.delay),
                     run.life.failures);
      return;
    case Action::Kind::disarm_timer:
      run.timer->stop();
      return;
    case Action::Kind::report_ready_timeout:
      spdlog::warn("{} was not ready within {}; stopping it", who(run), format_duration(run.gen->worker.ready_timeout));
      return;
    case Action::Kind::report_watchdog:
      spdlog::warn("{}: watchdog timeout; stopping it", who(run));
      return;
  }
}

void Supervisor::spawn_process(WorkerRun& run) {
  Slot& slot = slots_[static_cast<std::size_t>(run.slot)];
  const Generation& gen = *run.gen;
  WorkerIdentity id;
  id.slot = run.slot;
  id.workers = target_count_;
  id.master_pid = ::getpid();
  id.generation = gen.number;
  id.listen_fds = gen.listeners->configs().size();
  id.fd_names = gen.listeners->fd_names();
  const bool notify = gen.worker.ready.kind == ReadyKind::notify || gen.worker.watchdog > Duration::zero();
  if (notify) id.notify_socket = notify_address_;
  id.watchdog = gen.worker.watchdog;

  os::SpawnSpec spec;
  spec.executable = gen.executable;
  spec.argv = gen.worker.command;
  spec.env = build_worker_env(master_env_, gen.worker, id);
  spec.listen_fds = gen.listeners->fds_for_slot(run.slot);
  spec.directory = gen.worker.directory;
  spec.credentials = gen.credentials;
  spec.output = gen.output;
  spec.master_pid = id.master_pid;
  spec.with_watchdog_pid = gen.worker.watchdog > Duration::zero();

  auto spawned = os::spawn(spec);
  if (!spawned) {
    spdlog::error("worker {}: cannot start '{}': {}", run.slot, gen.executable, spawned.error());
    Event e = Event::of(Event::Kind::spawn_failed);
    e.jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    dispatch(run, e);
    return;
  }
  if (slot.last_exit || slot.restarts > 0 || &run != slot.current.get()) ++slot.restarts;
  run.pid = spawned->pid;
  run.started = Clock::now();
  run.reached_ready = false;
  run.notify_status.clear();
  run.notified_stopping = false;
  run.rss_bytes = 0;
  run.cpu_ticks = 0;
  run.cpu_sampled = {};
  run.cpu_percent = 0;
  run.exec_report = std::move(spawned->exec_report);
  by_pid_[run.pid] = &run;
  const int s = run.slot;
  const pid_t pid = run.pid;
  auto log_line = [s, pid](std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    spdlog::info("worker {} (pid {}): {}", s, pid, line);
  };
  if (spawned->stdout_pipe.valid()) run.out = std::make_unique<LineReader>(loop_, std::move(spawned->stdout_pipe), log_line);
  if (spawned->stderr_pipe.valid()) run.err = std::make_unique<LineReader>(loop_, std::move(spawned->stderr_pipe), log_line);
  spdlog::debug("{} started (generation {})", who(run), gen.number);
  arm_watchdog(run);
  dispatch(run, Event::of(Event::Kind::spawned));
}

void Supervisor::arm_watchdog(WorkerRun& run) {
  if (run.gen->worker.watchdog > Duration::zero() && run.pid > 0) run.watchdog->start(run.gen->worker.watchdog);
}

WorkerRun* Supervisor::find_run(pid_t pid) {
  auto it = by_pid_.find(pid);
  return it == by_pid_.end() ? nullptr : it->second;
}

void Supervisor::on_notify(pid_t sender, const NotifyMessage& message) {
  Batch batch(*this);
  WorkerRun* run = find_run(sender);
  if (run == nullptr) {
    spdlog::debug("notify: dropped a message from pid {}, which is no worker", sender);
    return;
  }
  if (message.status) run->notify_status = *message.status;
  if (message.stopping) run->notified_stopping = true;
  if (message.watchdog) arm_watchdog(*run);
  if (message.ready) dispatch(*run, Event::of(Event::Kind::ready_notified));
}

void Supervisor::reap_children() {
  Batch batch(*this);
  while (auto pid = os::peek_exited_child()) {
    WorkerRun* run = find_run(*pid);
    // The worker is a zombie, so its pid and process group are still reserved: whatever
    // it left behind in its group goes with it.
    if (run != nullptr) ::kill(-*pid, SIGKILL);
    const ExitStatus status = os::reap(*pid);
    if (run == nullptr) {
      spdlog::debug("reaped orphaned process {} ({})", *pid, describe(status));
      continue;
    }
    on_worker_exit(*run, status);
  }
}

void Supervisor::on_worker_exit(WorkerRun& run, const ExitStatus& status) {
  by_pid_.erase(run.pid);
  if (run.out) run.out->drain();
  if (run.err) run.err->drain();
  run.watchdog->stop();
  const int exec_errno = run.exec_report.valid() ? os::read_exec_errno(run.exec_report) : 0;
  run.exec_report.reset();
  if (exec_errno != 0) {
    spdlog::error("worker {} (pid {}): cannot execute '{}': {}", run.slot, run.pid, run.gen->executable,
                  std::strerror(exec_errno));
  } else {
    const bool expected = run.life.state == WorkerState::stopping;
    const auto level = (expected || status.success()) ? spdlog::level::info : spdlog::level::warn;
    spdlog::log(level, "{} {}", who(run), describe(status));
  }
  Slot& slot = slots_[static_cast<std::size_t>(run.slot)];
  slot.last_exit = LastExit{status, std::chrono::system_clock::now()};
  Event e = Event::of(Event::Kind::exited);
  e.status = status;
  // An exec that failed never started the program: never count it as healthy.
  e.was_ready = run.reached_ready && exec_errno == 0;
  e.uptime = std::chrono::duration_cast<Duration>(Clock::now() - run.started);
  e.jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  run.pid = -1;
  dispatch(run, e);
}

void Supervisor::update_steering() {
  std::vector<int> ready, starting;
  auto state_of = [](const std::unique_ptr<WorkerRun>& r) { return r ? r->life.state : WorkerState::stopped; };
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    if (slot.removing) continue;
    if (state_of(slot.current) == WorkerState::ready || state_of(slot.candidate) == WorkerState::ready)
      ready.push_back(static_cast<int>(i));
    else if (state_of(slot.current) == WorkerState::starting || state_of(slot.candidate) == WorkerState::starting)
      starting.push_back(static_cast<int>(i));
  }
  // Prefer ready workers; while none is ready, the starting ones will accept soon.
  // With no worker at all, steering is removed and connections wait for the next one.
  const std::vector<int>& live = !ready.empty() ? ready : starting;
  if (on_steer) return on_steer(live);  // the balancer narrows it to waiting workers
  if (auto s = gen_->listeners->steer(live); !s) spdlog::warn("cannot steer connections: {}, ignoring", s.error());
}

void Supervisor::collect_finished_runs() {
  for (auto& slot : slots_) {
    for (auto it = slot.retiring.begin(); it != slot.retiring.end();) {
      if (has_process((*it)->life.state)) {
        ++it;
        continue;
      }
      retire(std::move(*it));
      it = slot.retiring.erase(it);
    }
  }
}

void Supervisor::retire(std::unique_ptr<WorkerRun> run) {
  if (!run) return;
  run->timer->stop();
  run->watchdog->stop();
  // Freed at the next settle: this batch may have been started by one of its timers.
  graveyard_.push_back(std::move(run));
}

void Supervisor::stop(StopMode mode) {
  if (stopping_ && mode == StopMode::graceful) return;
  Batch batch(*this);
  stopping_ = true;
  drain_timer_->stop();
  if (rolling_) finish_rolling(Error{"preforkd is stopping"}, "");
  spdlog::info("stopping {} workers ({})", slots_.size(), mode == StopMode::graceful ? "graceful" : "fast");
  const Event e = mode == StopMode::graceful ? Event::stop_for(StopIntent::remove) : Event::of(Event::Kind::kill);
  std::vector<WorkerRun*> runs;
  for_each_run([&](WorkerRun& r) { runs.push_back(&r); });
  for (WorkerRun* r : runs) dispatch(*r, e);
}

void Supervisor::check_finished() {
  if (finished_) return;
  bool any = false;
  for_each_run([&](WorkerRun& r) { any = any || has_process(r.life.state); });
  if (any) return;
  // Every worker is gone; descendants that escaped their worker's process group were
  // re-parented to the master (a subreaper) and go now too.
  const auto orphans = os::list_children();
  for (pid_t pid : orphans) ::kill(pid, SIGKILL);
  if (!orphans.empty()) return;  // reap_children() calls again once they are reaped
  finished_ = true;
  if (on_finished) on_finished();
}

}  // namespace preforkd::daemon
