// Starting a worker's process: its environment, sockets, notify socket, cgroup and CPU,
// then its output read line by line and its watchdog armed.

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"

#include <preforkd/core/cpu_affinity.hpp>
#include <preforkd/core/worker_env.hpp>
#include <preforkd/os/affinity.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unistd.h>

namespace preforkd::daemon {

namespace {

// worker.cpu_affinity: the CPU for `slot`, from the master's mask as it is now (read only
// when pinning is on). Slots sharing CPUs is said once per master.
int pinned_cpu(const CpuAffinity& affinity, int slot, int count) {
  if (affinity.kind == CpuAffinity::Kind::none) return -1;
  const std::vector<int> usable =
      affinity.kind == CpuAffinity::Kind::automatic ? os::read_usable_cpu_list() : std::vector<int>{};
  static bool wrap_logged = false;
  if (!wrap_logged) {
    if (auto note = affinity_wrap_note(affinity, usable, count)) {
      spdlog::info("worker.cpu_affinity: {}", *note);
      wrap_logged = true;
    }
  }
  return cpu_for_slot(affinity, usable, slot).value_or(-1);
}

SpawnFailure cause_of(const os::SpawnError& e) {
  return e.fd_shortage ? SpawnFailure::fd_shortage : SpawnFailure::error;
}

}  // namespace

std::vector<Event> Supervisor::spawn_process(WorkerRun& run) {
  Slot& slot = slots_[static_cast<std::size_t>(run.slot)];
  const Generation& gen = *run.gen;
  const os::ListenerSet& listeners = listeners_for(run);
  WorkerIdentity id;
  id.slot = run.slot;
  id.workers = target_count_;
  id.master_pid = ::getpid();
  id.generation = gen.number;
  id.listen_fds = listeners.configs().size();
  id.fd_names = listeners.fd_names();
  // A run that speaks sd_notify gets its own socket before its first process starts.
  const bool notify = gen.worker.ready.kind == ReadyKind::notify || gen.worker.watchdog > Duration::zero();
  if (notify && !run.notify) {
    if (auto opened = open_notify_socket(run); !opened) {
      run.spawn_error = opened.error();
      const SpawnFailure cause = opened.failure().fd_shortage ? SpawnFailure::fd_shortage : SpawnFailure::error;
      return {Event::spawn_failed_with(cause, std::uniform_real_distribution<double>(0.0, 1.0)(rng_))};
    }
  }
  if (notify) id.notify_socket = run.notify->address();
  id.watchdog = gen.worker.watchdog;

  os::SpawnSpec spec;
  spec.executable = gen.executable;
  spec.argv = gen.worker.command;
  spec.env = build_worker_env(master_env_, gen.worker, id);
  spec.listen_fds = listeners.fds_for_slot(run.slot);
  hand_over_socket_flags(run, listeners, spec.listen_fds);
  spec.directory = gen.worker.directory;
  spec.credentials = gen.credentials;
  spec.output = gen.output;
  spec.master_pid = id.master_pid;
  spec.with_watchdog_pid = gen.worker.watchdog > Duration::zero();
  os::Fd cgroup_dir = prepare_cgroup(run);
  spec.cgroup_fd = cgroup_dir.get();
  spec.cpu = pinned_cpu(gen.worker.cpu_affinity, run.slot, std::max(target_count_, run.slot + 1));

  auto spawned = os::spawn(spec);
  cgroup_dir.reset();
  if (!spawned) {
    if (run.cgroup) run.cgroup->remove();
    run.cgroup.reset();
    run.spawn_error = spawned.error();
    return {Event::spawn_failed_with(cause_of(spawned.failure()), std::uniform_real_distribution<double>(0.0, 1.0)(rng_))};
  }
  if (!spawned->cgroup_fallback.empty())
    log_with(log_fields(run), spdlog::level::warn,
             "worker cgroups: workers cannot start in their cgroup ({}); each joins it before exec instead, "
             "which makes every start wait for the kernel (about 13 ms on a 2-core VM)",
             spawned->cgroup_fallback);
  if (run.cgroup) spare_wanted_.push_back(run.slot);
  if (slot.had_process) ++slot.restarts;
  if (!slot.had_process) slot.first_exec_errno = spawned->exec_errno;
  slot.had_process = true;
  run.pid = spawned->pid;
  run.cpu = spec.cpu;
  run.started = Clock::now();
  run.started_wall = std::chrono::system_clock::now();
  run.reached_ready = false;
  run.spawn_error.clear();
  run.notify_status.clear();
  run.notified_stopping = false;
  run.notify_refusal_logged = false;
  run.stall_note.clear();
  run.usage = Usage{};
  run.known_tree.clear();
  run.exec_errno = spawned->exec_errno;
  by_pid_[run.pid] = &run;
  read_output(run, std::move(spawned->stdout_pipe), std::move(spawned->stderr_pipe));
  // Every new process of a worker, whatever started it (first start, crash, reload, scale,
  // recycle), gets one info line with its slot and pid; one whose exec failed is reported instead.
  log_with(log_fields(run), run.exec_errno == 0 ? spdlog::level::info : spdlog::level::debug,
           "{} started (generation {})", who(run), gen.number);
  Event started = Event::of(Event::Kind::spawned);
  started.exec_errno = run.exec_errno;
  if (run.exec_errno == 0) arm_watchdog(run);
  return {started};
}

void Supervisor::read_output(WorkerRun& run, os::Fd out, os::Fd err) {
  const int s = run.slot;
  const pid_t pid = run.pid;
  auto log_line = [this, s, pid, fields = log_fields(run)](OutputStream stream) {
    return [this, s, pid, stream, fields](std::string_view line) mutable {
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      const LoggedOutputLine out = output_line(line, log_target());
      fields.priority = out.priority;
      log_with(fields, out.level, "worker {} (pid {}): {}", s, pid, out.text);
      if (on_output) on_output(s, pid, stream, out.text);
    };
  };
  auto read = [&](os::Fd fd, OutputStream stream) -> std::unique_ptr<LineReader> {
    if (!fd.valid()) return nullptr;
    auto opened = LineReader::open(loop_, std::move(fd), log_line(stream));
    if (!opened)
      log_with(log_fields(run), spdlog::level::warn, "{}: cannot read its output: {}", who(run), opened.error());
    return opened ? std::move(*opened) : nullptr;
  };
  run.out = read(std::move(out), OutputStream::out);
  run.err = read(std::move(err), OutputStream::err);
}

void Supervisor::arm_watchdog(WorkerRun& run) {
  if (run.gen->worker.watchdog > Duration::zero() && run.pid > 0) run.watchdog->start(run.gen->worker.watchdog);
}

}  // namespace preforkd::daemon
