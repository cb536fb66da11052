#pragma once
// The status document: what `preforkctl status` shows and the status reply carries next to
// "ok" ("master", "workers", "listeners", "memory", "pool"), with its JSON form both ways.

#include <preforkd/core/pool_status.hpp>
#include <preforkd/core/result.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace preforkd::control {

struct MasterStatus {
  int pid = 0;
  std::string version;
  std::string config;  // the config file's path
  int generation = 0;  // reloads so far (PREFORK_GENERATION of the newest workers)
  double uptime_s = 0;
  int workers_ready = 0;
  int workers_total = 0;
  std::string notify_status;  // what the master last told systemd (STATUS=), may be empty
  std::uint64_t rss_bytes = 0;  // the master's own resident memory; 0 when unknown
  int reloads = 0;              // reloads asked for since start (control socket or SIGHUP), done or failed
  int reload_failures = 0;      // of those, the ones that failed (bad config, rolled back)
  int rollbacks = 0;            // rolling updates (reload, restart) rolled back: a new worker never got ready
  double start_unix_time = 0;  // when it started, in seconds since the epoch (kept across upgrades)
  bool operator==(const MasterStatus&) const = default;
};

struct LastExitInfo {
  std::string text;          // "exited with status 1", "exited on signal 9"
  int code = -1;             // exit status, -1 when killed by a signal
  int signal = 0;            // signal number, 0 when it exited
  double unix_time = 0;      // when, in seconds since the epoch
  double ago_s = 0;          // how long before the snapshot was taken
  std::string cause{};       // "stalled" when the master stopped it as hung; "" for an exit of its own
  bool operator==(const LastExitInfo&) const = default;
};

struct WorkerStatus {
  int slot = 0;
  int pid = -1;                // -1 while the slot has no process
  std::string state;           // starting|ready|stopping|backoff|failed|stopped
  int generation = 0;
  int restarts = 0;
  double uptime_s = 0;         // of the current process; 0 without one
  std::uint64_t rss_bytes = 0;  // 0 when unknown
  double cpu_percent = 0;      // over the last sampling interval; 100 = one CPU
  std::optional<LastExitInfo> last_exit;
  std::string notify_status;   // the worker's last STATUS= line
  std::string activity = "unknown";  // waiting|busy|unknown: last seen waiting for a connection or not
  int queued = 0;                    // connections in its slot's accept queues (balanced listeners)
  // The whole tree (the worker and what it forked), from smaps_rollup; rss_bytes too.
  std::uint64_t pss_bytes = 0;  // shared pages divided among their users: sums to the real total
  std::uint64_t uss_bytes = 0;  // private pages (Private_Clean + Private_Dirty): what a recycle frees
  int processes = 0;            // in the tree; 0 when unknown
  std::string cgroup{};         // the worker's own cgroup, "" without one
  int crashes = 0;                   // unplanned exits in the slot (last_exit is the latest)
  int replacements = 0;              // planned replacements: reload, restart, scale, ...
  std::map<std::string, int> replaced_for{};  // replacements by reason ("reload": 2)
  std::string cpus{};                // the CPUs it is pinned to ("1"), "" when not pinned
  double cpu_s = 0;                  // CPU time (user + system) of the current process, as last sampled
  double recycle_in_s = -1;          // until its max_lifetime recycle (jitter included); -1: none
  std::string recycled{};            // why the slot was last recycled: "memory 612 MiB > 512 MiB", "lifetime"
  double start_unix_time = 0;         // when the current process started, in seconds since the epoch; 0 without one
  bool operator==(const WorkerStatus&) const = default;
};

struct ListenerStatus {
  std::string name;
  std::string address;
  std::string mode;             // reuseport|shared
  std::vector<int> queue_depth;  // accept queue: one per slot (reuseport) or one (shared); -1 unknown
  std::string balance{};         // load|hash for reuseport; "" for shared
  std::string balanced_by{};     // balance = load: "ebpf" (the kernel program) or "sampler"; "" otherwise
  std::string ebpf_error{};      // why its eBPF program failed while the master ran (the sampler took over); "" if not
  // balanced_by = ebpf: new connections the program sent to a "waiting" worker, to a
  // "busy" one (every live worker was busy), or left to the kernel's "hash" (none live)
  std::map<std::string, std::uint64_t> steered{};
  int defer_accept_s = 0;        // TCP_DEFER_ACCEPT in seconds; 0: off
  int fastopen = 0;              // TCP_FASTOPEN queue length; 0: off
  bool keep_alive = false;            // SO_KEEPALIVE
  int keep_alive_time_s = 0;          // TCP_KEEPIDLE; 0: the kernel's default
  int keep_alive_interval_s = 0;      // TCP_KEEPINTVL; 0: the kernel's default
  int keep_alive_probes = 0;          // TCP_KEEPCNT; 0: the kernel's default
  std::int64_t receive_buffer = 0;    // SO_RCVBUF as configured (bytes); 0: the kernel's default
  std::int64_t send_buffer = 0;       // SO_SNDBUF as configured (bytes); 0: the kernel's default
  bool no_delay = false;              // TCP_NODELAY
  bool free_bind = false;             // IP_FREEBIND / IPV6_FREEBIND
  std::string bind_ipv6_only{};       // ipv6-only|both|default for an IPv6 listener; "" otherwise
  std::string bind_to_device{};       // SO_BINDTODEVICE; "" for none
  bool non_blocking = false;          // the workers get the socket with O_NONBLOCK
  bool refusing = false;              // resetting new connections: no worker ready for fail_fast_after
  std::uint64_t refused_total = 0;    // connections reset that way since the master started
  bool operator==(const ListenerStatus&) const = default;
};

// Memory of all the workers' trees together, and of the master; "memory" in the JSON.
// shared = PSS total - USS total: the workers' share of pages they map together.
struct MemorySummary {
  int workers = 0;               // workers with a process, counted below
  std::uint64_t rss_bytes = 0;   // double-counts shared pages
  std::uint64_t pss_bytes = 0;
  std::uint64_t uss_bytes = 0;   // private
  std::uint64_t shared_bytes = 0;
  std::uint64_t master_rss_bytes = 0;
  std::uint64_t master_pss_bytes = 0;
  std::uint64_t master_uss_bytes = 0;
  bool operator==(const MemorySummary&) const = default;
};

// Adds up the workers' figures (pss, uss, rss of every worker with a pid).
[[nodiscard]] MemorySummary summarize_memory(const std::vector<WorkerStatus>& workers);

struct StatusSnapshot {
  MasterStatus master;
  std::vector<WorkerStatus> workers;
  std::vector<ListenerStatus> listeners;
  MemorySummary memory{};
  PoolStatus pool;  // core/pool_status.hpp
  bool operator==(const StatusSnapshot&) const = default;
};

void to_json(nlohmann::json& j, const MasterStatus& v);
void to_json(nlohmann::json& j, const LastExitInfo& v);
void to_json(nlohmann::json& j, const WorkerStatus& v);
void to_json(nlohmann::json& j, const ListenerStatus& v);
void to_json(nlohmann::json& j, const MemorySummary& v);
void to_json(nlohmann::json& j, const StatusSnapshot& v);
// These throw nlohmann::json::exception on a missing or mistyped field; use parse_status.
void from_json(const nlohmann::json& j, MasterStatus& v);
void from_json(const nlohmann::json& j, LastExitInfo& v);
void from_json(const nlohmann::json& j, WorkerStatus& v);
void from_json(const nlohmann::json& j, ListenerStatus& v);
void from_json(const nlohmann::json& j, MemorySummary& v);
void from_json(const nlohmann::json& j, StatusSnapshot& v);

// {"ok":true,"master":…,"workers":…,"listeners":…}
[[nodiscard]] nlohmann::json make_status_reply(const StatusSnapshot& snapshot);
// Reads the snapshot out of a status reply (or a bare snapshot object).
[[nodiscard]] Result<StatusSnapshot> parse_status(const nlohmann::json& reply);

}  // namespace preforkd::control
