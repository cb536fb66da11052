#include <preforkd/daemon/master/master.hpp>

#include <preforkd/core/control_path.hpp>
#include <preforkd/core/exit_codes.hpp>
#include <preforkd/core/message_text.hpp>
#include <preforkd/core/metrics_text.hpp>
#include <preforkd/daemon/upgrade/upgrade.hpp>
#include <preforkd/daemon/uv/loop.hpp>
#include <preforkd/os/process_metrics.hpp>

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <grp.h>
#include <unistd.h>

namespace preforkd::daemon {

namespace {

Result<ControlServerOptions> control_options(const Config& config) {
  ControlServerOptions o;
  o.path = config.daemon.control_socket;
  if (o.path.empty())
    o.path = default_control_socket(config.path, [](const char* name) { return std::getenv(name); }, ::geteuid());
  o.mode = config.daemon.control_mode;
  if (!config.daemon.control_group.empty()) {
    const struct group* g = ::getgrnam(config.daemon.control_group.c_str());
    if (g == nullptr) return Error{"preforkd.control_group: unknown group '" + config.daemon.control_group + "'"};
    o.group = g->gr_gid;
  }
  return o;
}

}  // namespace

Master::Master(Config config, std::shared_ptr<const Generation> gen, os::ListenerSet listeners)
    : config_(std::move(config)) {
  // Checked in run(), before anything uses the loop.
  const Status opened = open_loop(&loop_);
  loop_ok_ = static_cast<bool>(opened);
  if (!loop_ok_) spdlog::error("cannot create the event loop: {}", opened.error());
  supervisor_ = std::make_unique<Supervisor>(&loop_, std::move(gen), std::move(listeners));
  supervisor_->on_finished = [this] { stop_loop(&loop_); };
  // Each observer is told the kinds of change it follows (supervision/slot_changes.hpp), in
  // this order: fail-fast, readiness, the pool, systemd's fd store, then STATUS= and READY=1.
  supervisor_->subscribe(Change::workers | Change::sockets, [this](Changes) {
    if (fail_fast_) fail_fast_->update();
  });
  supervisor_->subscribe(Change::workers, [this](Changes) {
    if (readiness_) readiness_->update();
  });
  // The pool's watches are on the sockets of slots without a worker.
  supervisor_->subscribe(Change::workers | Change::sockets, [this](Changes) {
    if (pool_) pool_->update();
  });
  // Scaling and reloads change the sockets: systemd's store follows.
  supervisor_->subscribe(Change::sockets, [this](Changes) { fd_store_.sync(supervisor_->listeners()); });
  supervisor_->subscribe(Change::workers, [this](Changes) { on_workers_change(); });
  supervisor_->on_output = [this](int slot, pid_t pid, OutputStream stream, std::string_view text) {
    output_log_.add(slot, pid, stream, text);
  };
  // Balanced accept: steers within the supervisor's live set to the waiting workers.
  balancer_ = std::make_unique<Balancer>(&loop_, *supervisor_);
  supervisor_->on_steer = [this](const std::vector<int>& live) { balancer_->on_live_change(live); };
  if (loop_ok_) systemd_ = std::make_unique<SystemdNotifier>(&loop_);
}

Master::~Master() {
  signals_.clear();
  ignored_signals_.reset();
  control_.reset();
  metrics_.reset();
  shared_notify_.reset();
  sampler_.reset();
  pool_.reset();
  recycler_.reset();
  operations_.reset();
  fail_fast_.reset();
  stall_watch_.reset();
  readiness_.reset();
  supervisor_->on_steer = nullptr;
  balancer_.reset();
  systemd_.reset();
  supervisor_.reset();
  if (!loop_ok_) return;
  close_loop(&loop_);
}

Status Master::open_metrics() {
  if (config_.daemon.metrics_listen.empty()) return Ok{};
  std::string why;
  auto address = parse_address(config_.daemon.metrics_listen, &why);
  if (!address) return Error{"metrics_listen '" + config_.daemon.metrics_listen + "': " + why};
  MetricsServerOptions options;
  options.address = std::move(*address);
  auto server = MetricsServer::open(&loop_, std::move(options), [this] { return metrics::render(status(), os::read_own_process_metrics()); });
  if (!server) return Error{server.error()};
  metrics_ = std::move(*server);
  spdlog::info("metrics at http://{}/metrics", metrics_->address());
  return Ok{};
}

int Master::run() {
  if (!loop_ok_) return 1;
  // The control socket first: a second master on the same socket must stop here,
  // before it starts any worker.
  auto options = control_options(config_);
  if (!options) {
    spdlog::error("{}", options.error());
    return exit_code::config;
  }
  auto handler = [this](const control::Request& r, ControlServer::Responder respond) { handle(r, std::move(respond)); };
  // After an upgrade the socket is already bound and listening: the same one, adopted.
  auto control = resume_ ? ControlServer::adopt(&loop_, *options, {resume_->control_fd, resume_->control_dev, resume_->control_ino},
                                                handler)
                         : ControlServer::open(&loop_, *options, handler);
  if (!control) {
    spdlog::error("{}", control.error());
    return exit_code::failed;
  }
  control_ = std::move(*control);
  spdlog::info("control socket at '{}'", control_->path());
  // Reload, restart, scale, recycle and upgrade, one at a time (daemon/operations/operations.hpp).
  auto operations = Operations::open(&loop_);
  if (!operations) {
    spdlog::error("{}", operations.error());
    return exit_code::failed;
  }
  operations_ = std::move(*operations);
  if (Status metrics = open_metrics(); !metrics) {
    spdlog::error("{}", metrics.error());
    return exit_code::failed;
  }

  // Workers that speak sd_notify (ready = "notify" or a watchdog) have a socket per run
  // (the supervisor's). An older image's workers, taken over, share the one it had.
  if (resume_ && resume_->notify_fd >= 0) {
    auto on_notify = [this](pid_t pid, const NotifyMessage& m) { supervisor_->on_shared_notify(pid, m); };
    auto notify = NotifySocket::adopt(&loop_, resume_->notify_fd, resume_->notify_address, on_notify);
    if (!notify) {
      spdlog::error("{}", notify.error());
      return exit_code::failed;
    }
    shared_notify_ = std::move(*notify);
  }

  // Every catchable signal but PIPE and the fault signals has an action on the loop, if only
  // a log line: a stray one never kills or stops the master (core/master_signal.hpp).
  auto ignored_signals = IgnoredSignalLog::open(&loop_);
  if (!ignored_signals) {
    spdlog::error("{}", ignored_signals.error());
    return 1;
  }
  ignored_signals_ = std::move(*ignored_signals);
  for (int sig : master_signals()) {
    auto watch = SignalWatch::open(&loop_, sig, [this](int s) { on_signal(s); });
    if (!watch) {
      spdlog::error("cannot watch {}: {}", signal_name(sig), watch.error());
      return 1;
    }
    signals_.push_back(std::move(*watch));
  }
  // Also catches socket changes that no state change announces (a slot removed when
  // its queue has drained).
  auto sampler = Timer::open(&loop_, [this] {
    sample_usage();
    fd_store_.sync(supervisor_->listeners());
  });
  if (!sampler) {
    spdlog::error("usage sampler: {}", sampler.error());
    return 1;
  }
  sampler_ = std::move(*sampler);
  // Memory and CPU time for status, and for max_memory (worker.memory_sample_interval).
  const Duration sample_interval = config_.worker.memory_sample_interval;
  sampler_->start(sample_interval, sample_interval);
  // Recycling (worker.max_memory, max_lifetime): looks after each sample and at lifetimes.
  auto recycler = Recycler::open(&loop_, *supervisor_, *operations_);
  if (!recycler) {
    spdlog::error("{}", recycler.error());
    return 1;
  }
  recycler_ = std::move(*recycler);

  // Hung workers (worker.stall_timeout) and fail-fast while none is ready (fail_fast_after).
  auto stall_watch = StallWatch::open(&loop_, *supervisor_, *balancer_);
  if (!stall_watch) {
    spdlog::error("{}", stall_watch.error());
    return 1;
  }
  stall_watch_ = std::move(*stall_watch);
  stall_watch_->start();
  auto fail_fast = FailFast::open(&loop_, *supervisor_, config_);
  if (!fail_fast) {
    spdlog::error("{}", fail_fast.error());
    return 1;
  }
  fail_fast_ = std::move(*fail_fast);
  // Workers with ready = "accepting" become ready once seen waiting on their socket.
  auto readiness = ReadinessWatch::open(&loop_, *supervisor_);
  if (!readiness) {
    spdlog::error("{}", readiness.error());
    return 1;
  }
  readiness_ = std::move(*readiness);
  // The adaptive pool (worker.pool): starts and retires workers with the load.
  // It yields to every operation, as recycles do: its changes are operations too
  // (core/operation_queue.hpp).
  auto pool = Pool::open(&loop_, *supervisor_, *balancer_, *operations_);
  if (!pool) {
    spdlog::error("{}", pool.error());
    return 1;
  }
  pool_ = std::move(*pool);

  // Workers start with clone(CLONE_VM), safe only in a one-thread master (os/spawn.cpp).
  if (Status one = os::check_single_threaded(); !one)
    spdlog::warn("{}; starting workers with fork instead", one.error());
  // The handlers are in place: signals that came while the master started (or during an
  // upgrade's exec) are delivered now.
  if (resume_) restore_signal_mask(resume_->blocked_signals);
  unblock_master_signals();
  if (resume_) {
    if (Status resumed = supervisor_->resume(resume_->slots); !resumed) {
      spdlog::error("cannot take over the workers: {}", resumed.error());
      return 1;
    }
    finish_resume();
  } else if (Status started = supervisor_->start(); !started) {
    spdlog::error("cannot start the workers: {}", started.error());
    return 1;
  } else if (judge_start(supervisor_->first_exec_errnos()) == StartVerdict::cannot_execute) {
    give_up_start();
  }
  fd_store_.sync(supervisor_->listeners());
  run_loop(&loop_);
  spdlog::info("all workers stopped, exiting");
  return exit_code_;
}

// No worker could run the command (as systemd's 203/EXEC): one error line, then exit 1
// before READY=1, so that a unit fails and says why instead of retrying for ever.
void Master::give_up_start() {
  const auto first = supervisor_->first_exec_errnos();
  const int err = first.empty() || !first.front() ? 0 : *first.front();
  const std::string why = supervisor_->generation().exec_failure(err);
  spdlog::error("cannot start any worker: {}; exiting", why);
  systemd_->status("cannot start any worker: " + why);
  exit_code_ = exit_code::failed;
  stop(StopMode::fast);
}

void Master::on_signal(int signum) {
  const SignalAction action = master_signal_action(signum);
  switch (action) {
    case SignalAction::reap_children:
      supervisor_->reap_children();
      return;
    case SignalAction::stop_graceful:
      if (supervisor_->stopping()) return;
      spdlog::info("received {}, stopping gracefully", signal_name(signum));
      systemd_->stopping();
      stop(StopMode::graceful);
      return;
    case SignalAction::stop_fast:
      spdlog::info("received SIGQUIT, stopping now");
      systemd_->stopping();
      stop(StopMode::fast);
      return;
    case SignalAction::reload:
      log_with({.generation = supervisor_->generation().number + 1}, spdlog::level::info,
               "received SIGHUP, reloading '{}'", config_.path);
      submit_reload(nullptr);
      return;
    case SignalAction::upgrade:
      spdlog::info("received SIGUSR2, upgrading in place");
      operations_->submit({OperationKind::upgrade,
                           [this](Done complete) {
                             Status st = upgrade(-1);
                             complete(st ? Status(Error{"upgrade failed"}) : std::move(st), "");
                           },
                           [](Status st, const std::string&) {
                             spdlog::error("upgrade failed: {}", st ? std::string("?") : st.error());
                           }});
      return;
    case SignalAction::scale_up:
    case SignalAction::scale_down: {
      const int delta = action == SignalAction::scale_up ? 1 : -1;
      operations_->submit({OperationKind::scale,
                           [this, delta](Done complete) { complete(supervisor_->scale(supervisor_->target_count() + delta), ""); },
                           [signum](Status st, const std::string&) {
                             if (!st) spdlog::warn("{}: {}, ignoring", signal_name(signum), st.error());
                           }});
      return;
    }
    case SignalAction::reopen_log:
    case SignalAction::log_and_ignore:
      ignored_signals_->received(signum, action);
      return;
    // Not watched on the loop (master_signals()), so never delivered here.
    case SignalAction::ignore_in_kernel:
    case SignalAction::libc_reserved:
    case SignalAction::default_fault:
    case SignalAction::uncatchable:
      return;
  }
}

void Master::stop(StopMode mode) {
  // Nothing waiting starts any more; the running operation ends as the stop makes it end.
  operations_->stop();
  supervisor_->stop(mode);
}

std::string Master::summary() const {
  return fmt::format("{}/{} ready, generation {}", supervisor_->ready_count(), plural(supervisor_->target_count(), "worker"),
                     supervisor_->generation().number);
}

void Master::on_workers_change() {
  if (supervisor_->stopping()) return;
  systemd_->status(summary());
  if (systemd_->ready_sent() || (operations_ && operations_->running() == OperationKind::reload)) return;
  // READY=1 once every initial worker has been started and is ready (or has given up).
  bool settled = true;
  for (const SlotView& slot : supervisor_->view()) {
    const WorkerState s = slot.current ? slot.current->state : WorkerState::stopped;
    // A slot the adaptive pool keeps without a worker is as started as it will be.
    settled = settled && (slot.parked || s == WorkerState::ready || s == WorkerState::failed);
  }
  if (settled) {
    spdlog::info("{}", summary());
    systemd_->ready();
  }
}

}  // namespace preforkd::daemon
