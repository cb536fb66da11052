#pragma once
// The master process: one libuv loop that turns signals, notify datagrams and control
// requests into supervisor calls.

#include <preforkd/core/config.hpp>
#include <preforkd/core/control_protocol.hpp>
#include <preforkd/core/master_state.hpp>
#include <preforkd/daemon/balance/balancer.hpp>
#include <preforkd/daemon/endpoints/control_server.hpp>
#include <preforkd/daemon/balance/fail_fast.hpp>
#include <preforkd/daemon/master/fd_store.hpp>
#include <preforkd/daemon/endpoints/metrics_server.hpp>
#include <preforkd/daemon/uv/notify_socket.hpp>
#include <preforkd/daemon/endpoints/output_log.hpp>
#include <preforkd/daemon/watch/readiness_watch.hpp>
#include <preforkd/daemon/operations/operations.hpp>
#include <preforkd/daemon/operations/pool.hpp>
#include <preforkd/daemon/operations/recycler.hpp>
#include <preforkd/daemon/master/ignored_signal_log.hpp>
#include <preforkd/daemon/uv/signal_watch.hpp>
#include <preforkd/daemon/watch/stall_watch.hpp>
#include <preforkd/daemon/supervision/supervisor.hpp>
#include <preforkd/daemon/master/systemd_notifier.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace preforkd::daemon {

class Master {
 public:
  Master(Config config, std::shared_ptr<const Generation> gen, os::ListenerSet listeners);
  ~Master();
  // Runs every worker in a cgroup of its own under `tree` (none: process groups).
  void use_worker_cgroups(std::unique_ptr<os::CgroupTree> tree) { supervisor_->use_cgroups(std::move(tree)); }
  // Opens the control and notify sockets, starts the workers and runs until every worker
  // is gone; returns the process exit code.
  int run();
  // The binary an upgrade execs (this program's path at start) and the version status shows.
  void set_program(std::string path, std::string version);
  // In the image an upgrade started: run() takes the sockets, workers and timers from
  // `state` instead of binding and spawning.
  void resume_from(MasterState state);
  // Names of sockets systemd passed back that start-up did not take (fd_store.hpp).
  void remove_from_fd_store(const std::vector<std::string>& names) { fd_store_.remove(names); }

 private:
  void on_signal(int signum);
  // The workers changed: sd_notify STATUS=, and READY=1 once every initial worker is up.
  void on_workers_change();
  void give_up_start();
  void handle(const control::Request& request, ControlServer::Responder respond);
  [[nodiscard]] control::StatusSnapshot status();
  void sample_usage();
  // Stops the workers (and refuses every operation still waiting).
  void stop(StopMode mode);
  // A reload submitted to operations_ (daemon/operations/operations.hpp): `then` runs once
  // it is over, after it was counted and logged (SIGHUP and preforkctl alike).
  void submit_reload(Done then);
  // The Prometheus endpoint, when metrics_listen is set (metrics_server.hpp).
  [[nodiscard]] Status open_metrics();
  // Re-reads the config file and applies the difference (reload.cpp); `done` once it is over.
  void reload(Done done);
  // Scales to `target` (preforkctl scale, SIGTTIN/SIGTTOU): `done` once the new workers
  // were started and removed slots told to drain, with the count in its message.
  void scale(control::ScaleTarget target, Done done);
  // How a reload ended, in the master's log: the same for SIGHUP and preforkctl.
  static void log_reload_result(const Status& result, const std::string& message);
  void apply_reload(Config next, Done done);
  void finish_reload(Config next, Status rolled, const std::string& message, const Done& done);
  // preforkctl logs (control_commands.cpp): a reply with the lines asked for, or an error.
  [[nodiscard]] nlohmann::json logs_reply(const control::LogsTarget& target);
  [[nodiscard]] std::string summary() const;
  // In-place upgrade (master_upgrade.cpp): preflight, state, exec. Returns only on failure,
  // with nothing changed; `reply_fd` is the control client that asked (-1 for SIGUSR2).
  [[nodiscard]] Status upgrade(int reply_fd);
  [[nodiscard]] Result<MasterState> handoff_state(int reply_fd);
  // The new image's side, once its handles are open: answer the client, READY=1.
  void finish_resume();

  uv_loop_t loop_{};
  Config config_;
  // Before supervisor_, so it outlives the supervisor's output readers that feed it.
  OutputLog output_log_{config_.worker.log_buffer};
  Clock::time_point started_ = Clock::now();
  std::chrono::system_clock::time_point started_wall_ = std::chrono::system_clock::now();  // for status
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<SystemdNotifier> systemd_;
  FdStore fd_store_;  // the listening sockets in systemd's fd store
  // The notify socket a format-1 image shared among its workers, after an upgrade from it.
  std::unique_ptr<NotifySocket> shared_notify_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<Timer> sampler_;
  std::unique_ptr<Balancer> balancer_;
  std::unique_ptr<StallWatch> stall_watch_;
  std::unique_ptr<ReadinessWatch> readiness_;  // ready = "accepting"
  std::unique_ptr<FailFast> fail_fast_;
  std::unique_ptr<Operations> operations_;  // the one holder of "busy"
  std::unique_ptr<Recycler> recycler_;  // worker.max_memory, worker.max_lifetime
  std::unique_ptr<Pool> pool_;          // worker.pool = "dynamic" | "ondemand"
  std::unique_ptr<MetricsServer> metrics_;  // with [preforkd] metrics_listen
  std::vector<std::unique_ptr<SignalWatch>> signals_;
  std::unique_ptr<IgnoredSignalLog> ignored_signals_;  // USR1, TSTP, ALRM, … (log_and_ignore)
  bool loop_ok_ = false;  // uv_loop_init worked
  int reloads_ = 0;          // reloads asked for, done or failed
  int reload_failures_ = 0;
  std::string self_path_;
  std::string version_;
  std::optional<MasterState> resume_;
  int upgrades_ = 0;
  int exit_code_ = 0;
};

}  // namespace preforkd::daemon
