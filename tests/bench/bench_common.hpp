#pragma once
// What the benchmarks of preforkd share: clocks and percentiles, child processes that
// cannot outlive the benchmark, a preforkd run with its log, the start datagrams of the
// bench_worker fixture, the control socket, and a fresh-connection HTTP client that
// sorts every request into answered, refused, reset or timed out.
//
// Every process is started from the main thread with a parent-death signal (SIGKILL),
// and the benchmark is a child subreaper: whatever is left when a sub-benchmark ends
// (also when it throws) is killed and reaped by kill_and_reap_all_children().

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../support/test_support.hpp"

namespace bench {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// ---------------------------------------------------------------- paths

std::string preforkd_bin();
std::string demo_bin();
std::string bench_worker_bin();  // the fixture tests/fixtures/bench_worker.cpp
std::string sync_worker_bin();   // the fixture tests/fixtures/sync_worker.cpp
// The executable `name` in $PATH, or "" when there is none.
std::string find_in_path(const std::string& name);

// ---------------------------------------------------------------- time and numbers

// CLOCK_MONOTONIC in nanoseconds: the clock of the bench_worker's start datagrams.
std::int64_t mono_ns();
inline double ns_to_ms(std::int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

// Nearest-rank percentile (p in 0..100) of `values`; NaN when empty.
double percentile(std::vector<double> values, double p);
inline double median(std::vector<double> values) {
  return percentile(std::move(values), 50);
}

// A benchmark that cannot go on: the message is printed and the next one runs.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "  name ........ value   (target ...)", the shape of every result line.
void report(const std::string& name, const std::string& value, const std::string& target = "");
std::string fmt_ms(double ms);  // "0.412 ms"

// ---------------------------------------------------------------- places

using testsupport::TempDir;

using testsupport::free_port;

// ---------------------------------------------------------------- processes

// A child process: fork + exec from the calling (main) thread, with PR_SET_PDEATHSIG
// SIGKILL, stdin on /dev/null. The destructor SIGKILLs it if it still runs and reaps it.
class Child {
 public:
  struct Options {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // added to (or replacing) the inherited environment
    int stdout_fd = -1;            // -1: /dev/null
    int stderr_fd = -1;            // -1: /dev/null, -2: inherit
  };
  explicit Child(const Options& options);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  // CLOCK_MONOTONIC read by the parent just before fork, and by the child just before
  // its execve.
  [[nodiscard]] std::int64_t fork_ns() const { return fork_ns_; }
  [[nodiscard]] std::int64_t exec_ns() const { return exec_ns_; }
  [[nodiscard]] bool exited() const { return exited_; }
  void signal(int sig) const;
  // Waits for the exit; the wait status, or nullopt at the deadline.
  std::optional<int> wait(Ms deadline);
  // SIGKILL (when still running) and reap.
  void kill_and_reap();

 private:
  pid_t pid_ = -1;
  std::int64_t fork_ns_ = 0, exec_ns_ = 0;
  bool exited_ = false;
};

// Kills every remaining child (and, as subreaper, every orphaned descendant) and reaps
// them; bounded in time. Returns how many it had to kill.
int kill_and_reap_all_children();

// Runs a command to its end with stdout captured (stderr inherited); {status, stdout}.
std::pair<int, std::string> run_capture(const std::vector<std::string>& argv, Ms deadline);

// How many live (not zombie) children `pid` has, over all its threads
// (/proc/<pid>/task/*/children): a master's workers.
int live_children(pid_t pid);

// /proc/<pid>/status field in KiB ("VmRSS", "VmHWM"); nullopt when unreadable.
std::optional<long> proc_status_kib(pid_t pid, const std::string& field);

// ---------------------------------------------------------------- preforkd

// A config for one run; written as TOML by to_toml().
struct Setup {
  std::vector<std::string> command;
  int count = 2;
  std::string ready = "immediate";
  std::map<std::string, std::string> env;
  std::string listen;          // "127.0.0.1:PORT"; empty: a free port is picked
  std::string control_socket;  // empty: <dir>/ctl.sock
  std::string worker_extra;    // raw [worker] lines
  std::string listen_extra;    // raw [[listen]] lines (mode, balance)
  std::string daemon_extra;    // raw [preforkd] lines (metrics_listen)
};
std::string to_toml(const Setup& setup);

// What `preforkd --check` says against `setup` (its diagnostics, each from the key on,
// joined by ", "), or nullopt when it accepts it: a benchmark of a key that this build
// lacks says why.
std::optional<std::string> check_rejects(const Setup& setup);

// The master's stdout+stderr, read by a thread that stamps every line with mono_ns().
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  [[nodiscard]] int write_fd() const { return write_fd_; }
  void close_write_end();
  // The time the first line containing `needle` arrived, waiting up to `deadline`.
  std::optional<std::int64_t> wait_line(const std::string& needle, Ms deadline);
  [[nodiscard]] int count_lines(const std::string& needle) const;
  [[nodiscard]] std::vector<std::string> lines_with(const std::string& needle) const;
  [[nodiscard]] std::string tail(int lines) const;

 private:
  void run();
  int read_fd_ = -1, write_fd_ = -1;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string partial_;
  std::vector<std::pair<std::int64_t, std::string>> lines_;
  std::thread thread_;
};

// A running preforkd on `setup`, config at <dir>/app.toml. The destructor stops it fast
// (SIGQUIT, SIGKILL after 5 s) and reaps it; its workers die with it.
class Preforkd {
 public:
  explicit Preforkd(Setup setup);
  ~Preforkd();
  Preforkd(const Preforkd&) = delete;
  Preforkd& operator=(const Preforkd&) = delete;

  [[nodiscard]] pid_t pid() const { return child_->pid(); }
  [[nodiscard]] std::int64_t exec_ns() const { return child_->exec_ns(); }
  [[nodiscard]] const Setup& setup() const { return setup_; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string config_path() const { return dir_.file("app.toml"); }
  [[nodiscard]] const std::string& control_socket() const { return setup_.control_socket; }
  [[nodiscard]] LogCapture& log() { return log_; }
  // Rewrites the config file (for reload); an empty listen or control_socket keeps the
  // current one.
  void rewrite(const Setup& setup);
  // Waits for "N/N workers ready"; throws a Failure with the log's tail on timeout.
  std::int64_t wait_ready(Ms deadline = 30s);
  [[noreturn]] void fail(const std::string& what) const;

 private:
  TempDir dir_;
  Setup setup_;
  int port_ = 0;
  LogCapture log_;
  std::optional<Child> child_;
};

// ---------------------------------------------------------------- bench_worker datagrams

struct StartMessage {
  pid_t pid = -1;
  int slot = -1;
  std::int64_t ns = 0;  // CLOCK_MONOTONIC at the top of the worker's main()
};

// The Unix datagram socket the bench_worker fixture reports to ($BENCH_SOCKET).
class StartListener {
 public:
  explicit StartListener(std::string path);
  ~StartListener();
  StartListener(const StartListener&) = delete;
  StartListener& operator=(const StartListener&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  // The next datagram, or nullopt after `timeout`.
  std::optional<StartMessage> receive(Ms timeout);

 private:
  std::string path_;
  int fd_ = -1;
};

// ---------------------------------------------------------------- control socket

// One request line on a fresh connection, one reply line back, as JSON. Throws a
// Failure on connect errors, a timeout or an unparsable reply. `elapsed_ms`, when given,
// gets the time from connect to the reply's newline.
nlohmann::json control_request(const std::string& socket_path, const std::string& request, Ms timeout,
                               double* elapsed_ms = nullptr);

// j[key] when it is an integer, else `fallback` (e.g. a worker's "pid" while it has none).
int json_int(const nlohmann::json& j, const char* key, int fallback);

// ---------------------------------------------------------------- HTTP clients

// `reset` is an ECONNRESET; `closed` an EOF without a response. Both count as reset.
enum class Outcome { answered, refused, reset, closed, timed_out, other };

// GET `path` on a fresh connection to 127.0.0.1:port with "Connection: close".
// `other_reason` gets a short text for Outcome::other.
Outcome http_get(int port, Ms timeout, std::string* other_reason = nullptr, const std::string& path = "/");

struct LoadStats {
  long answered = 0, refused = 0, reset = 0, timed_out = 0, other = 0;
  long closed = 0;  // of `reset`: EOF without a response
  std::map<std::string, long> other_reasons;
  std::vector<double> latencies_ms;  // of answered requests
  double seconds = 0;
  [[nodiscard]] long total() const { return answered + refused + reset + timed_out + other; }
  [[nodiscard]] long failed() const { return total() - answered; }
};

// `threads` clients that each open a fresh connection per request, one after another,
// until stop(). Only 127.0.0.1.
class LoadClient {
 public:
  LoadClient(int port, int threads, Ms timeout);
  ~LoadClient();
  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;
  LoadStats stop();

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::vector<LoadStats> per_thread_;
  std::int64_t started_ns_ = 0;
  bool stopped_ = false;
};

// Prints one labelled table row per outcome class.
void print_outcomes(const std::string& title, const LoadStats& stats);

}  // namespace bench
