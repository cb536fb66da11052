#pragma once
// The TOML configuration: [preforkd], [worker] and [[listen]], parsed and validated.

#include <preforkd/core/address.hpp>
#include <preforkd/core/config_pool.hpp>
#include <preforkd/core/units.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace preforkd {

enum class LogLevel { trace, debug, info, warn, error };
enum class LogFormat { text, json };
enum class WorkerOutput { log, inherit };
// Whether each worker runs in a cgroup of its own (os/cgroup.hpp): where one can be made,
// never, or always (start fails without one).
enum class WorkerCgroups { automatic, off, on };
// Whether listeners with balance = "load" steer with the kernel program (os/reuseport_ebpf):
// where it loads, never (the master's sampler), or always (start fails without it).
enum class EbpfUse { automatic, off, on };
enum class RestartMode { always, on_failure, never };
enum class ListenMode { reuseport, shared };
// How a reuseport listener spreads connections over its slots' sockets.
enum class ListenBalance { load, hash };
// IPV6_V6ONLY of an IPv6 listener (bind_ipv6_only): preforkd's default is IPv6 only, so that
// "0.0.0.0:80" can be a listener of its own; "both" also takes IPv4 (v4-mapped); "default"
// leaves it to net.ipv6.bindv6only, as systemd's BindIPv6Only=default does.
enum class BindIpv6Only { ipv6_only, both, system_default };
// How a started worker comes to count as ready: at once; on READY=1; after staying alive
// for a while; or once its tree is seen waiting for connections on the slot's own
// socket (blocked in accept() on it, or the socket in an epoll set: os/accept_wait.hpp).
enum class ReadyKind { immediate, notify, alive, accepting };

struct ReadyPolicy {
  ReadyKind kind = ReadyKind::alive;
  Duration alive_for = std::chrono::seconds(1);  // for ReadyKind::alive
  bool operator==(const ReadyPolicy&) const = default;
};

struct DaemonConfig {
  std::string control_socket;  // empty: the default path (see README)
  mode_t control_mode = 0600;
  std::string control_group;
  LogLevel log_level = LogLevel::info;
  LogFormat log_format = LogFormat::text;
  WorkerOutput worker_output = WorkerOutput::log;
  WorkerCgroups worker_cgroups = WorkerCgroups::automatic;
  EbpfUse ebpf = EbpfUse::automatic;
  // The Prometheus endpoint's TCP address as written ("127.0.0.1:9464", "[::1]:9464");
  // "" for none. Validated by parse_address(); the master binds it at start.
  std::string metrics_listen;
  bool operator==(const DaemonConfig&) const = default;
};

// [worker] cpu_affinity: no pinning (the default), "auto" (slot i on the i-th usable
// CPU), or a list of CPUs (slot i on list[i % size]). See core/cpu_affinity.hpp.
struct CpuAffinity {
  enum class Kind { none, automatic, list };
  Kind kind = Kind::none;
  std::vector<int> cpus;  // for Kind::list, in file order
  bool operator==(const CpuAffinity&) const = default;
};

// One entry of [worker] env_file and where the config file names it.
struct EnvFileEntry {
  std::string entry;  // "-/etc/app.env"
  std::string key;    // "worker.env_file", "worker.env_file[1]"
  int line = 0;
  int column = 0;
  bool operator==(const EnvFileEntry&) const = default;
};

struct WorkerConfig {
  std::vector<std::string> command;
  int count = 1;            // resolved: "auto" becomes the usable CPU count
  bool count_auto = false;  // true when the file said "auto"
  std::string directory;    // empty: the master's working directory
  std::string user;
  std::string group;
  std::vector<std::pair<std::string, std::string>> env;  // in file order
  // env_file as written (a "-" prefix: optional), each with its place for messages, and
  // what the files set: read by load_config (core/env_file.hpp has the syntax), in order,
  // a later file overriding an earlier one. env applies on top of them.
  std::vector<EnvFileEntry> env_files;
  std::vector<std::pair<std::string, std::string>> env_file_vars;
  ReadyPolicy ready;
  Duration ready_timeout = std::chrono::seconds(30);
  int stop_signal = 15;  // SIGTERM
  Duration stop_timeout = std::chrono::seconds(30);
  RestartMode restart = RestartMode::always;
  Duration backoff_initial = std::chrono::milliseconds(100);
  Duration backoff_max = std::chrono::seconds(30);
  std::vector<int> fatal_exit_codes;
  Duration watchdog = Duration::zero();
  int max_surge = 1;  // extra workers a rolling reload or restart may run at once
  CpuAffinity cpu_affinity;
  // A worker whose accept queue holds connections and takes none for this long is
  // replaced (core/stall_plan); zero turns it off.
  Duration stall_timeout = std::chrono::seconds(30);
  // Recycling (core/recycle_plan): a worker whose tree's USS (private memory) stays above max_memory bytes,
  // or that has run for max_lifetime (with jitter), is replaced by a new one, ready first.
  // Zero turns either off. The usage sampler reads memory every memory_sample_interval.
  std::uint64_t max_memory = 0;
  Duration max_lifetime = Duration::zero();
  Duration memory_sample_interval = std::chrono::seconds(2);
  // Bytes of recent output kept per slot for `preforkctl logs` (core/output_ring); 0: off.
  std::uint64_t log_buffer = 64 * 1024;
  // pool, min_count, spare, idle_timeout (core/config_pool.hpp): how many slots run a worker.
  PoolConfig pool;
  bool operator==(const WorkerConfig&) const = default;
};

struct ListenConfig {
  std::string name;
  Address address;
  ListenMode mode = ListenMode::reuseport;
  ListenBalance balance = ListenBalance::load;  // reuseport only
  int backlog = 4096;
  Duration defer_accept = Duration::zero();  // TCP_DEFER_ACCEPT, rounded up to seconds; 0: off
  int fastopen = 0;                          // TCP_FASTOPEN queue length; 0: off
  // The options named after systemd.socket(5) (os/socket_options applies them). Zero, false
  // or "" leaves the kernel's default; accepted connections inherit all but the bind ones.
  bool keep_alive = false;                         // SO_KEEPALIVE
  Duration keep_alive_time = Duration::zero();     // TCP_KEEPIDLE, whole seconds
  Duration keep_alive_interval = Duration::zero(); // TCP_KEEPINTVL, whole seconds
  int keep_alive_probes = 0;                       // TCP_KEEPCNT
  int receive_buffer = 0;                          // SO_RCVBUF in bytes (the kernel doubles it)
  int send_buffer = 0;                             // SO_SNDBUF in bytes (the kernel doubles it)
  bool no_delay = false;                           // TCP_NODELAY
  bool free_bind = false;                          // IP_FREEBIND / IPV6_FREEBIND, before bind()
  BindIpv6Only bind_ipv6_only = BindIpv6Only::ipv6_only;  // IPV6_V6ONLY, IPv6 only, before bind()
  std::string bind_to_device{};                    // SO_BINDTODEVICE, before bind()
  // systemd's NonBlocking=: the workers get the socket with O_NONBLOCK set; by default it
  // is blocking, as systemd hands it. A flag of the open file every holder shares.
  bool non_blocking = false;
  // While no slot has had a ready worker for this long, new connections are reset at
  // once instead of waiting (core/fail_fast_plan); zero turns it off.
  Duration fail_fast_after = std::chrono::seconds(5);
};

// TCP_DEFER_ACCEPT's value: seconds, rounded up.
[[nodiscard]] int defer_accept_seconds(const ListenConfig& l);
// Whether two listeners set the same socket options (all of them, defer_accept,
// fastopen and non_blocking included): a reload compares them to decide what to apply to
// a held socket.
[[nodiscard]] bool same_socket_options(const ListenConfig& a, const ListenConfig& b);

struct Config {
  std::string path;  // the file it was read from
  DaemonConfig daemon;
  WorkerConfig worker;
  std::vector<ListenConfig> listeners;
};

// One problem in a config file, printed as "file:line:col: key: message".
struct ConfigError {
  std::string file;
  int line = 0;  // 0 when the problem has no place (e.g. the file cannot be read)
  int column = 0;
  std::string key;  // dotted, e.g. "worker.count" or "listen[1].address"
  std::string message;
  [[nodiscard]] std::string to_string() const;
};

struct ConfigResult {
  std::optional<Config> config;     // set when there are no errors
  std::vector<ConfigError> errors;  // every problem found, in file order
};

// What `preforkd --check` looks up on the system, so that what would fail at start is
// reported with its file:line:col. Injectable: unit tests and the fuzzer pass fakes, and
// os::system_lookup() is the real one. An empty function is not consulted.
struct SystemLookup {
  // False for a user or group that does not exist (names; numeric ids are always accepted).
  std::function<bool(const std::string& name)> user_exists;
  std::function<bool(const std::string& name)> group_exists;
  // Why the program cannot be started, resolved as at start (PATH for a bare name, the
  // worker's directory for a relative path), e.g. "not found in PATH"; nullopt when it can.
  std::function<std::optional<std::string>(const std::string& program, const std::string& directory)>
      program_problem;
  // The CPUs this process may run on (its affinity mask), to check worker.cpu_affinity.
  std::function<std::vector<int>()> usable_cpu_list;
  // Why the eBPF balancer cannot be loaded here, or nullopt (checked for preforkd.ebpf = "on").
  std::function<std::optional<std::string>()> ebpf_problem;
};

// Parses TOML text. `file` is used in messages only; `usable_cpus` resolves count = "auto".
// With a `lookup`, users, groups and the program are checked too.
[[nodiscard]] ConfigResult parse_config(std::string_view text, const std::string& file, int usable_cpus,
                                        const SystemLookup* lookup = nullptr);

// Reads and parses a file.
[[nodiscard]] ConfigResult load_config(const std::string& file, int usable_cpus, const SystemLookup* lookup = nullptr);

[[nodiscard]] const char* to_string(LogLevel v);
[[nodiscard]] const char* to_string(RestartMode v);
[[nodiscard]] const char* to_string(ListenMode v);
[[nodiscard]] const char* to_string(ListenBalance v);
[[nodiscard]] const char* to_string(BindIpv6Only v);  // "ipv6-only", "both", "default"

}  // namespace preforkd
