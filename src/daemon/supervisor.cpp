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

Supervisor::Supervisor(uv_loop_t* loop, Config config, LaunchPlan plan, os::ListenerSet listeners)
    : loop_(loop),
      config_(std::move(config)),
      plan_(std::move(plan)),
      policy_(LifecyclePolicy::from(plan_.worker)),
      listeners_(std::move(listeners)),
      master_env_(copy_environment()),
      rng_(std::random_device{}()) {}

Supervisor::~Supervisor() = default;

std::string Supervisor::who(const WorkerRun& run) const {
  if (run.pid > 0) return fmt::format("worker {} (pid {})", run.slot, run.pid);
  return fmt::format("worker {}", run.slot);
}

std::unique_ptr<WorkerRun> Supervisor::make_run(int slot) {
  auto run = std::make_unique<WorkerRun>();
  run->slot = slot;
  run->generation = plan_.generation;
  WorkerRun* raw = run.get();
  run->timer = std::make_unique<Timer>(loop_, [this, raw] { dispatch(*raw, Event::of(Event::Kind::timer)); });
  return run;
}

void Supervisor::start() {
  slots_.resize(static_cast<std::size_t>(plan_.worker.count));
  for (int i = 0; i < plan_.worker.count; ++i) slots_[static_cast<std::size_t>(i)].current = make_run(i);
  for (auto& slot : slots_) dispatch(*slot.current, Event::of(Event::Kind::start));
  spdlog::info("started {} workers of '{}'", plan_.worker.count, plan_.worker.command.front());
}

void Supervisor::dispatch(WorkerRun& run, const Event& event) {
  const WorkerState before = run.life.state;
  Transition t = step(run.life, event, policy_);
  run.life = t.next;
  if (run.life.state == WorkerState::ready && before != WorkerState::ready) {
    run.reached_ready = true;
    spdlog::debug("{} is ready", who(run));
  }
  if (run.life.state == WorkerState::failed && before != WorkerState::failed)
    spdlog::error("{} failed; not restarting it (preforkctl restart {} tries again)", who(run), run.slot);
  for (const Action& a : t.actions) perform(run, a);
  update_steering();
  if (stopping_) check_finished();
}

void Supervisor::perform(WorkerRun& run, const Action& action) {
  switch (action.kind) {
    case Action::Kind::spawn:
      spawn_process(run);
      return;
    case Action::Kind::send_stop_signal:
      if (run.pid > 0) ::kill(run.pid, plan_.worker.stop_signal);
      return;
    case Action::Kind::send_kill:
      if (run.pid > 0) {
        spdlog::warn("{} did not stop in time; sending SIGKILL", who(run));
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
      spdlog::warn("{} was not ready within {}; stopping it", who(run), format_duration(plan_.worker.ready_timeout));
      return;
    case Action::Kind::report_watchdog:
      spdlog::warn("{}: watchdog timeout; stopping it", who(run));
      return;
  }
}

void Supervisor::spawn_process(WorkerRun& run) {
  Slot& slot = slots_[static_cast<std::size_t>(run.slot)];
  WorkerIdentity id;
  id.slot = run.slot;
  id.workers = static_cast<int>(slots_.size());
  id.master_pid = ::getpid();
  id.generation = run.generation;
  id.listen_fds = listeners_.configs().size();
  id.fd_names = listeners_.fd_names();

  os::SpawnSpec spec;
  spec.executable = plan_.executable;
  spec.argv = plan_.worker.command;
  spec.env = build_worker_env(master_env_, plan_.worker, id);
  spec.listen_fds = listeners_.fds_for_slot(run.slot);
  spec.directory = plan_.worker.directory;
  spec.credentials = plan_.credentials;
  spec.output = plan_.output;
  spec.master_pid = id.master_pid;

  auto spawned = os::spawn(spec);
  if (!spawned) {
    spdlog::error("worker {}: cannot start '{}': {}", run.slot, plan_.executable, spawned.error());
    Event e = Event::of(Event::Kind::spawn_failed);
    e.jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    dispatch(run, e);
    return;
  }
  if (slot.last_exit || run.pid > 0) ++slot.restarts;
  run.pid = spawned->pid;
  run.started = Clock::now();
  run.reached_ready = false;
  run.exec_report = std::move(spawned->exec_report);
  by_pid_[run.pid] = &run;
  const int s = run.slot;
  const pid_t pid = run.pid;
  if (spawned->stdout_pipe.valid())
    run.out = std::make_unique<LineReader>(loop_, std::move(spawned->stdout_pipe), [s, pid](std::string_view line) {
      spdlog::info("worker {} (pid {}): {}", s, pid, line);
    });
  if (spawned->stderr_pipe.valid())
    run.err = std::make_unique<LineReader>(loop_, std::move(spawned->stderr_pipe), [s, pid](std::string_view line) {
      spdlog::info("worker {} (pid {}): {}", s, pid, line);
    });
  spdlog::debug("{} started", who(run));
  dispatch(run, Event::of(Event::Kind::spawned));
}

WorkerRun* Supervisor::find_run(pid_t pid) {
  auto it = by_pid_.find(pid);
  return it == by_pid_.end() ? nullptr : it->second;
}

void Supervisor::reap_children() {
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
  if (stopping_) check_finished();
}

void Supervisor::on_worker_exit(WorkerRun& run, const ExitStatus& status) {
  by_pid_.erase(run.pid);
  const int exec_errno = run.exec_report.valid() ? os::read_exec_errno(run.exec_report) : 0;
  run.exec_report.reset();
  if (exec_errno != 0) {
    spdlog::error("worker {} (pid {}): cannot execute '{}': {}", run.slot, run.pid, plan_.executable,
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
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const auto& slot = slots_[i];
    auto state_of = [](const std::unique_ptr<WorkerRun>& r) { return r ? r->life.state : WorkerState::stopped; };
    const bool any_ready = state_of(slot.current) == WorkerState::ready ||
                           std::ranges::any_of(slot.retiring, [&](const auto& r) { return state_of(r) == WorkerState::ready; });
    if (any_ready) ready.push_back(static_cast<int>(i));
    else if (state_of(slot.current) == WorkerState::starting) starting.push_back(static_cast<int>(i));
  }
  // Prefer ready workers; while none is ready, the starting ones will accept soon.
  // With no worker at all, steering is removed and connections wait for the next one.
  const std::vector<int>& live = !ready.empty() ? ready : starting;
  if (auto s = listeners_.steer(live); !s) spdlog::warn("cannot steer connections: {}, ignoring", s.error());
}

void Supervisor::stop(StopMode mode) {
  if (stopping_ && mode == StopMode::graceful) return;
  stopping_ = true;
  spdlog::info("stopping {} workers ({})", slots_.size(), mode == StopMode::graceful ? "graceful" : "fast");
  const Event e = mode == StopMode::graceful ? Event::stop_for(StopIntent::remove) : Event::of(Event::Kind::kill);
  for (auto& slot : slots_) {
    if (slot.current) dispatch(*slot.current, e);
    for (auto& r : slot.retiring) dispatch(*r, e);
  }
  check_finished();
}

void Supervisor::check_finished() {
  if (finished_) return;
  for (const auto& slot : slots_) {
    if (slot.current && has_process(slot.current->life.state)) return;
    for (const auto& r : slot.retiring)
      if (has_process(r->life.state)) return;
  }
  // Every worker is gone; descendants that escaped their worker's process group were
  // re-parented to the master (a subreaper) and go now too.
  const auto orphans = os::list_children();
  for (pid_t pid : orphans) ::kill(pid, SIGKILL);
  if (!orphans.empty()) return;  // reap_children() calls again once they are reaped
  finished_ = true;
  if (on_finished) on_finished();
}

}  // namespace preforkd::daemon
