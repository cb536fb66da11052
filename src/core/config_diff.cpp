#include <preforkd/core/config_diff.hpp>

namespace preforkd {

namespace {

bool same_listener(const ListenConfig& a, const ListenConfig& b) {
  return a.name == b.name && a.address.text == b.address.text && a.mode == b.mode && a.balance == b.balance &&
         a.backlog == b.backlog && same_socket_options(a, b);
}

bool same_listeners(const std::vector<ListenConfig>& a, const std::vector<ListenConfig>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same_listener(a[i], b[i])) return false;
  return true;
}

}  // namespace

ConfigDiff diff_configs(const Config& running, const Config& next) {
  ConfigDiff d;
  const WorkerConfig& a = running.worker;
  const WorkerConfig& b = next.worker;
  auto roll_if = [&](bool changed, const char* key) {
    if (!changed) return;
    d.roll_workers = true;
    d.roll_reasons.emplace_back(key);
  };
  roll_if(a.command != b.command, "worker.command");
  roll_if(a.env != b.env, "worker.env");
  // What the files set, not their names: an edited file rolls, a renamed identical one does not.
  roll_if(a.env_file_vars != b.env_file_vars, "worker.env_file");
  roll_if(a.user != b.user, "worker.user");
  roll_if(a.group != b.group, "worker.group");
  roll_if(a.directory != b.directory, "worker.directory");
  // Applied when a worker starts.
  roll_if(a.cpu_affinity != b.cpu_affinity, "worker.cpu_affinity");
  // WATCHDOG_USEC and NOTIFY_SOCKET are part of the worker's environment.
  roll_if(a.watchdog != b.watchdog, "worker.watchdog");
  // And a run starting under "accepting" would read the other kinds' timer as its timeout:
  // switching to or from it gives new workers, which the reload then sees accept.
  roll_if((a.ready.kind == ReadyKind::notify) != (b.ready.kind == ReadyKind::notify) ||
              (a.ready.kind == ReadyKind::accepting) != (b.ready.kind == ReadyKind::accepting),
          "worker.ready");
  roll_if(running.daemon.worker_output != next.daemon.worker_output, "preforkd.worker_output");
  d.listeners_changed = !same_listeners(running.listeners, next.listeners);
  // Each worker's fds and LISTEN_FDNAMES follow the listeners.
  roll_if(d.listeners_changed, "listen");
  d.count_changed = a.count != b.count;
  d.policy_changed = a.ready != b.ready || a.ready_timeout != b.ready_timeout || a.stop_signal != b.stop_signal ||
                     a.stop_timeout != b.stop_timeout || a.restart != b.restart ||
                     a.backoff_initial != b.backoff_initial || a.backoff_max != b.backoff_max ||
                     a.fatal_exit_codes != b.fatal_exit_codes || a.max_surge != b.max_surge ||
                     running.daemon.log_level != next.daemon.log_level;
  d.pool_changed = a.pool != b.pool;
  const DaemonConfig& x = running.daemon;
  const DaemonConfig& y = next.daemon;
  if (x.control_socket != y.control_socket) d.needs_restart.emplace_back("preforkd.control_socket");
  if (x.control_mode != y.control_mode) d.needs_restart.emplace_back("preforkd.control_mode");
  if (x.control_group != y.control_group) d.needs_restart.emplace_back("preforkd.control_group");
  if (x.log_format != y.log_format) d.needs_restart.emplace_back("preforkd.log_format");
  if (x.worker_cgroups != y.worker_cgroups) d.needs_restart.emplace_back("preforkd.worker_cgroups");
  if (x.ebpf != y.ebpf) d.needs_restart.emplace_back("preforkd.ebpf");
  if (x.metrics_listen != y.metrics_listen) d.needs_restart.emplace_back("preforkd.metrics_listen");
  return d;
}

}  // namespace preforkd
