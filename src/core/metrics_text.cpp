// Which metrics /metrics has: each family with its help text, from the status document
// and the master's process figures. The text format itself is metrics_writer.cpp.

#include <preforkd/core/metrics_text.hpp>
#include <preforkd/core/worker_lifecycle.hpp>

#include "metrics_writer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <functional>

namespace preforkd::metrics {
namespace {

using control::ListenerStatus;
using control::PoolStatus;
using control::StatusSnapshot;
using control::WorkerStatus;

constexpr std::array<std::string_view, 6> worker_states{"starting", "ready", "stopping", "backoff", "failed", "stopped"};
constexpr std::array<std::string_view, 3> activities{"waiting", "busy", "unknown"};
// The eBPF balancer's decisions (ListenerStatus::steered), each shown from the start.
constexpr std::array<std::string_view, 3> steer_reasons{"waiting", "busy", "hash"};

double number(bool b) { return b ? 1 : 0; }

void write_process(Writer& out, const ProcessMetrics& p) {
  // Names and help texts as client_golang's process collector has them, so dashboards for
  // any Prometheus client work unchanged.
  const auto one = [&](std::string_view name, std::string_view help, Type type, auto value) {
    if (!value) return;
    out.family(name, help, type);
    out.sample(static_cast<double>(*value));
  };
  one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", Type::counter, p.cpu_seconds);
  one("process_open_fds", "Number of open file descriptors.", Type::gauge, p.open_fds);
  one("process_max_fds", "Maximum number of open file descriptors.", Type::gauge, p.max_fds);
  one("process_virtual_memory_bytes", "Virtual memory size in bytes.", Type::gauge, p.virtual_memory_bytes);
  one("process_resident_memory_bytes", "Resident memory size in bytes.", Type::gauge, p.resident_memory_bytes);
  one("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", Type::gauge,
      p.start_time_seconds);
}

// The adaptive pool (worker.pool): its mode, its size and bounds, and its changes.
void write_pool(Writer& out, const PoolStatus& p) {
  out.family("preforkd_pool_mode", "worker.pool: 1 for the running mode, 0 for the others.", Type::gauge);
  for (const std::string_view mode : {"static", "dynamic", "ondemand"}) out.sample(label("mode", mode), p.mode == mode ? 1 : 0);
  out.family("preforkd_pool_workers", "Slots the pool runs a worker in (starting or running).", Type::gauge);
  out.sample(p.live);
  out.family("preforkd_pool_waiting_workers", "Of them, seen waiting for a connection at the last sample (adaptive pools).",
             Type::gauge);
  out.sample(p.waiting);
  out.family("preforkd_pool_min_workers", "worker.min_count (count for a static pool).", Type::gauge);
  out.sample(p.min);
  out.family("preforkd_pool_max_workers", "worker.count: the most workers the pool runs.", Type::gauge);
  out.sample(p.max);
  out.family("preforkd_pool_changes_total", "Workers the pool started (grow) or retired when idle (shrink).",
             Type::counter);
  out.sample(label("direction", "grow"), static_cast<double>(p.grown_total));
  out.sample(label("direction", "shrink"), static_cast<double>(p.shrunk_total));
  out.family("preforkd_pool_last_change_timestamp_seconds", "When the pool last grew or shrank; 0 before it did.",
             Type::gauge);
  out.sample(p.last_change ? p.last_change->unix_time : 0);
}

void write_master(Writer& out, const StatusSnapshot& s) {
  out.family("preforkd_build_info", "The running preforkd's version, as a label; always 1.", Type::gauge);
  out.sample(label("version", s.master.version), 1);
  out.family("preforkd_start_time_seconds",
             "When the master started, in seconds since the epoch; an in-place upgrade keeps it.", Type::gauge);
  out.sample(s.master.start_unix_time);
  out.family("preforkd_master_pid", "Process id of the master.", Type::gauge);
  out.sample(s.master.pid);
  out.family("preforkd_master_generation",
             "Configuration generation: successful reloads since the start (PREFORK_GENERATION of new workers).",
             Type::gauge);
  out.sample(s.master.generation);
  out.family("preforkd_master_reloads_total", "Reloads asked for (control socket or SIGHUP), whether done or failed.",
             Type::counter);
  out.sample(s.master.reloads);
  out.family("preforkd_master_reload_failures_total", "Reloads that failed: a bad config, a bind error or a rollback.",
             Type::counter);
  out.sample(s.master.reload_failures);
  out.family("preforkd_master_rollbacks_total",
             "Rolling updates (reload, restart) rolled back because a new worker never became ready.", Type::counter);
  out.sample(s.master.rollbacks);
  out.family("preforkd_workers_desired", "Worker slots the master keeps: worker.count, or the last scale.",
             Type::gauge);
  out.sample(s.master.workers_total);
  out.family("preforkd_workers_ready", "Worker slots whose worker is ready.", Type::gauge);
  out.sample(s.master.workers_ready);
  write_pool(out, s.pool);
}

// One 0/1 series per possible value of a string, so that a query can sum them; a value this
// build does not know gets a series too.
void write_enum(Writer& out, const StatusSnapshot& s, std::string_view label_name, const auto& values,
                const std::function<const std::string&(const WorkerStatus&)>& value_of) {
  for (const WorkerStatus& w : s.workers) {
    const std::string& value = value_of(w);
    bool known = false;
    for (const std::string_view v : values) {
      known = known || v == value;
      out.sample(slot_label(w) + "," + label(label_name, v), v == value ? 1 : 0);
    }
    if (!known && !value.empty()) out.sample(slot_label(w) + "," + label(label_name, value), 1);
  }
}

void write_workers(Writer& out, const StatusSnapshot& s) {
  const auto has_process = [](const WorkerStatus& w) { return w.pid > 0; };
  out.family("preforkd_worker_state",
             "The slot's worker state: 1 for the current one (starting, ready, stopping, backoff, failed, stopped).",
             Type::gauge);
  write_enum(out, s, "state", worker_states, [](const WorkerStatus& w) -> const std::string& { return w.state; });
  out.family("preforkd_worker_activity",
             "Whether the slot's worker was last seen waiting for a connection (balanced accept): 1 for the current "
             "value.",
             Type::gauge);
  write_enum(out, s, "activity", activities, [](const WorkerStatus& w) -> const std::string& { return w.activity; });

  out.family("preforkd_worker_pid", "Process id of the slot's worker; -1 while the slot has no process.", Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) { return w.pid; });
  out.family("preforkd_worker_generation", "Configuration generation the slot's worker was started from.", Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) { return w.generation; });
  out.family("preforkd_worker_start_time_seconds",
             "When the slot's current process started, in seconds since the epoch; absent while it has none.",
             Type::gauge);
  out.per_worker(s, [&](const WorkerStatus& w) -> std::optional<double> {
    if (!has_process(w) || w.start_unix_time <= 0) return std::nullopt;
    return w.start_unix_time;
  });

  out.family("preforkd_worker_restarts_total", "Processes started in the slot after its first one, for any reason.",
             Type::counter);
  out.per_worker(s, [](const WorkerStatus& w) { return w.restarts; });
  out.family("preforkd_worker_crashes_total",
             "Unplanned exits in the slot: the worker exited or was killed without preforkd asking it to.",
             Type::counter);
  out.per_worker(s, [](const WorkerStatus& w) { return w.crashes; });
  out.family("preforkd_worker_replaced_total",
             "Planned replacements of the slot's worker, by reason: reload, restart, scale, or recycled for memory "
             "or lifetime.",
             Type::counter);
  for (const WorkerStatus& w : s.workers) {
    for (const ReplaceReason r : replace_reasons) {
      const auto it = w.replaced_for.find(to_string(r));
      out.sample(slot_label(w) + "," + label("reason", to_string(r)), it == w.replaced_for.end() ? 0 : it->second);
    }
    for (const auto& entry : w.replaced_for) {  // one this build does not know (a newer master's)
      // Not a structured binding: Clang 14 cannot capture one in a lambda.
      const std::string& reason = entry.first;
      const bool known = std::any_of(replace_reasons.begin(), replace_reasons.end(),
                                     [&](ReplaceReason r) { return reason == to_string(r); });
      if (!known) out.sample(slot_label(w) + "," + label("reason", reason), entry.second);
    }
  }

  out.family("preforkd_worker_rss_bytes",
             "Resident memory of the slot's worker and the processes it started; shared pages count in each one.",
             Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) { return static_cast<double>(w.rss_bytes); });
  out.family("preforkd_worker_pss_bytes",
             "Proportional memory of the slot's worker and its processes: shared pages divided among their users, so "
             "it sums to the real total.",
             Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) { return static_cast<double>(w.pss_bytes); });
  out.family("preforkd_worker_uss_bytes",
             "Private memory of the slot's worker and its processes: what replacing it would free.", Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) { return static_cast<double>(w.uss_bytes); });
  out.family("preforkd_worker_processes", "Processes in the slot's worker tree (the worker and what it started).",
             Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) { return w.processes; });
  out.family("preforkd_worker_cpu_seconds_total",
             "CPU time (user + system) of the slot's current process tree, as last sampled; starts again at 0 with "
             "a new process.",
             Type::counter);
  out.per_worker(s, [](const WorkerStatus& w) { return w.cpu_s; });
  out.family("preforkd_worker_cpu_ratio", "CPU used by the slot's worker over the last sampling interval; 1 is one CPU.",
             Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) { return w.cpu_percent / 100; });
  out.family("preforkd_worker_queued_connections",
             "Connections waiting in the slot's accept queues of balanced listeners.", Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) { return w.queued; });
  out.family("preforkd_worker_recycle_in_seconds",
             "Time left before the slot's worker is recycled for max_lifetime; absent when none is planned.",
             Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) -> std::optional<double> {
    if (w.recycle_in_s < 0) return std::nullopt;
    return w.recycle_in_s;
  });

  out.family("preforkd_worker_last_exit_code",
             "Exit status of the slot's last exited process; -1 if a signal killed it.", Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) -> std::optional<double> {
    if (!w.last_exit) return std::nullopt;
    return w.last_exit->code;
  });
  out.family("preforkd_worker_last_exit_signal", "Signal that killed the slot's last exited process; 0 if it exited.",
             Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) -> std::optional<double> {
    if (!w.last_exit) return std::nullopt;
    return w.last_exit->signal;
  });
  out.family("preforkd_worker_last_exit_timestamp_seconds",
             "When the slot's last process exited, in seconds since the epoch.", Type::gauge);
  out.per_worker(s, [](const WorkerStatus& w) -> std::optional<double> {
    if (!w.last_exit) return std::nullopt;
    return w.last_exit->unix_time;
  });
}

void write_listeners(Writer& out, const StatusSnapshot& s) {
  out.family("preforkd_listener_info", "A listening address with its mode and balancing, as labels; always 1.",
             Type::gauge);
  for (const ListenerStatus& l : s.listeners) {
    out.sample(listener_label(l) + "," + label("address", l.address) + "," + label("mode", l.mode) + "," +
                   label("balance", l.balance),
               1);
  }
  out.family("preforkd_listener_queued_connections",
             "Connections waiting in the listener's accept queue: one per slot (reuseport) or one (shared).",
             Type::gauge);
  for (const ListenerStatus& l : s.listeners) {
    const bool per_slot = l.mode == "reuseport";
    for (std::size_t i = 0; i < l.queue_depth.size(); ++i) {
      if (l.queue_depth[i] < 0) continue;  // unknown
      out.sample(per_slot ? listener_label(l) + "," + label("slot", std::to_string(i)) : listener_label(l),
                 l.queue_depth[i]);
    }
  }
  // balance = "load" listeners only: nothing balances the others on load.
  out.family("preforkd_listener_ebpf",
             "Whether the kernel's eBPF program balances the listener (balance = \"load\"): 1; 0 while the master's "
             "sampler does, because ebpf = \"off\" or the program failed (status says why).",
             Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) -> std::optional<double> {
    if (l.balanced_by.empty()) return std::nullopt;
    return number(l.balanced_by == "ebpf");
  });
  out.family("preforkd_listener_steered_total",
             "New connections the eBPF balancer sent to a waiting worker, to a busy one (every worker was busy), or "
             "left to the kernel's hash (no live slot), by reason.",
             Type::counter);
  for (const ListenerStatus& l : s.listeners) {
    if (l.balanced_by.empty()) continue;
    for (const std::string_view reason : steer_reasons) {
      const auto it = l.steered.find(std::string(reason));
      out.sample(listener_label(l) + "," + label("reason", reason),
                 it == l.steered.end() ? 0 : static_cast<double>(it->second));
    }
  }
  out.family("preforkd_listener_refusing",
             "1 while the master resets the listener's new connections because no worker has been ready for "
             "fail_fast_after.",
             Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return number(l.refusing); });
  out.family("preforkd_listener_refused_total",
             "Connections the master reset because no worker was ready (fail_fast_after).", Type::counter);
  out.per_listener(s, [](const ListenerStatus& l) { return static_cast<double>(l.refused_total); });

  // Socket options as configured, so that a dashboard can tell listeners apart by them.
  out.family("preforkd_listener_defer_accept_seconds", "TCP_DEFER_ACCEPT of the listener; 0 when off.", Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return l.defer_accept_s; });
  out.family("preforkd_listener_fastopen_queue_length", "TCP_FASTOPEN queue length of the listener; 0 when off.",
             Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return l.fastopen; });
  out.family("preforkd_listener_keep_alive", "Whether the listener's connections have SO_KEEPALIVE: 1 or 0.",
             Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return number(l.keep_alive); });
  out.family("preforkd_listener_keep_alive_time_seconds",
             "Idle time before the first keep-alive probe (TCP_KEEPIDLE); 0 for the kernel's default.", Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return l.keep_alive_time_s; });
  out.family("preforkd_listener_keep_alive_interval_seconds",
             "Time between keep-alive probes (TCP_KEEPINTVL); 0 for the kernel's default.", Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return l.keep_alive_interval_s; });
  out.family("preforkd_listener_keep_alive_probes",
             "Unanswered keep-alive probes before a connection is dropped (TCP_KEEPCNT); 0 for the kernel's default.",
             Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return l.keep_alive_probes; });
  out.family("preforkd_listener_receive_buffer_bytes",
             "Receive buffer size set on the listener (SO_RCVBUF); 0 for the kernel's default.", Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return static_cast<double>(l.receive_buffer); });
  out.family("preforkd_listener_send_buffer_bytes",
             "Send buffer size set on the listener (SO_SNDBUF); 0 for the kernel's default.", Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return static_cast<double>(l.send_buffer); });
  out.family("preforkd_listener_no_delay", "Whether the listener's connections have TCP_NODELAY: 1 or 0.", Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return number(l.no_delay); });
  out.family("preforkd_listener_free_bind", "Whether the listener may bind an address not (yet) local: 1 or 0.",
             Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return number(l.free_bind); });
  out.family("preforkd_listener_non_blocking",
             "Whether the workers get the listener's sockets non-blocking (non_blocking = true): 1 or 0.", Type::gauge);
  out.per_listener(s, [](const ListenerStatus& l) { return number(l.non_blocking); });
}

}  // namespace

const std::vector<std::string_view>& exported_fields() {
  static const std::vector<std::string_view> fields{
      "master.start_unix_time", "master.pid", "master.generation", "master.reloads", "master.reload_failures",
      "master.rollbacks", "master.workers_total", "master.workers_ready",
      "workers[].pid", "workers[].generation", "workers[].start_unix_time", "workers[].restarts",
      "workers[].crashes", "workers[].replaced_for", "workers[].rss_bytes", "workers[].pss_bytes",
      "workers[].uss_bytes", "workers[].processes", "workers[].cpu_s", "workers[].cpu_percent", "workers[].queued",
      "workers[].recycle_in_s", "workers[].last_exit.code", "workers[].last_exit.signal",
      "workers[].last_exit.unix_time",
      "listeners[].queue_depth", "listeners[].steered", "listeners[].refusing", "listeners[].refused_total",
      "listeners[].defer_accept_s", "listeners[].fastopen", "listeners[].keep_alive",
      "listeners[].keep_alive_time_s", "listeners[].keep_alive_interval_s", "listeners[].keep_alive_probes",
      "listeners[].receive_buffer", "listeners[].send_buffer", "listeners[].no_delay", "listeners[].free_bind",
      "listeners[].non_blocking",
      "pool.live", "pool.waiting", "pool.min", "pool.max", "pool.grown_total", "pool.shrunk_total",
      "pool.last_change.unix_time",
  };
  return fields;
}

const std::vector<std::string_view>& left_out_fields() {
  static const std::vector<std::string_view> fields{
      "master.uptime_s",             // preforkd_start_time_seconds: an age changes with every scrape
      "master.rss_bytes",            // process_resident_memory_bytes
      "workers[].slot",              // the slot label
      "workers[].uptime_s",          // preforkd_worker_start_time_seconds
      "workers[].replacements",      // sum by (slot) of preforkd_worker_replaced_total
      "workers[].last_exit.ago_s",   // preforkd_worker_last_exit_timestamp_seconds
      "pool.last_change.ago_s",      // preforkd_pool_last_change_timestamp_seconds
      "pool.last_change.from", "pool.last_change.to",  // preforkd_pool_workers before and after
      "memory.workers", "memory.rss_bytes", "memory.pss_bytes", "memory.uss_bytes", "memory.shared_bytes",
      "memory.master_rss_bytes", "memory.master_pss_bytes", "memory.master_uss_bytes",  // sums of the series above
  };
  return fields;
}

std::string render(const StatusSnapshot& snapshot, const ProcessMetrics& process) {
  Writer out;
  write_process(out, process);
  write_master(out, snapshot);
  write_workers(out, snapshot);
  write_listeners(out, snapshot);
  return out.take();
}

}  // namespace preforkd::metrics
