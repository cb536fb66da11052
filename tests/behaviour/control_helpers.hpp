#pragma once
// Helpers for the control-socket behaviour tests: run preforkctl as a child and capture
// what it prints, talk to the control socket directly, read status, and keep a load
// client hammering a port while a command runs.

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bt {

// Stops the daemon with TERM: it must exit 0 and leave no process behind (Catch checks).
void stop_cleanly(Daemon& d);


// Reloads and rolling restarts wait for every new worker: give them room.
inline constexpr Ms ctl_deadline = 120s;

struct CtlResult {
  int exit_code = -1;  // 128+N when killed by signal N; -1 when it had to be killed at the deadline
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs preforkctl with `args` to completion (killed at `deadline`), with its stdout and
// stderr captured through pipes (so not a terminal). `env` entries ("NAME=value") are added
// to the environment it inherits. Safe to call from several threads at once.
CtlResult run_ctl(const std::vector<std::string>& args, Ms deadline = ctl_deadline,
                  const std::vector<std::string>& env = {});

// The control socket of a harness Daemon: <its dir>/app.sock ($RUNTIME_DIRECTORY/<config stem>.sock).
std::string control_socket(const Daemon& d);

// preforkctl --socket <control_socket(d)> <args...>
CtlResult ctl(const Daemon& d, const std::vector<std::string>& args, Ms deadline = ctl_deadline);

// A raw client of the control socket: one connection, lines in, lines out.
class ControlConnection {
 public:
  // Connects to `path`; connected() tells whether it worked.
  explicit ControlConnection(const std::string& path, Ms timeout = 10s);
  ~ControlConnection();
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;

  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  [[nodiscard]] int connect_errno() const { return connect_errno_; }
  // Writes all of `data` (no newline added); false when the peer hung up or a write failed.
  bool send(const std::string& data);
  // The next line (without its newline) within `timeout`; nullopt on timeout, EOF or error.
  std::optional<std::string> read_line(Ms timeout = 10s);
  // Waits up to `timeout` for the peer to close (EOF or reset), discarding any data
  // that comes first; the discarded data is kept in `discarded`.
  bool wait_closed(Ms timeout, std::string* discarded = nullptr);
  // True when, right now, nothing is waiting to be read and the peer has not hung up.
  [[nodiscard]] bool quiet_and_open() const;

 private:
  int fd_ = -1;
  int connect_errno_ = 0;
  std::string buffer_;
  bool eof_ = false;
};

// One request line on a fresh connection and its parsed reply; nullopt when there was no
// reply line or it was not JSON.
std::optional<nlohmann::json> control_request(const std::string& path, const std::string& line, Ms timeout = 10s);

// {"cmd":"status"} on a fresh connection; nullopt unless the reply is {"ok":true,...}.
std::optional<nlohmann::json> status_of(const Daemon& d, Ms timeout = 10s);

// Waits until the daemon's status has exactly `count` workers, all "ready" with a pid, and
// (when given) its master generation is `generation`; the last status seen.
std::optional<nlohmann::json> wait_workers_ready(const Daemon& d, int count, std::optional<int> generation = {},
                                                 Ms deadline = default_deadline);

// Slot -> pid, from a status document (pids of workers without a process are -1).
std::vector<pid_t> pids_in(const nlohmann::json& status);

// Asks GET /env until every slot of 0..count-1 answered: slot -> the parsed /env document.
std::vector<nlohmann::json> env_of_workers(int port, int count, Ms deadline = default_deadline);

// Rewrites the daemon's config file (the next reload reads it).
void rewrite_config(const Daemon& d, const std::string& text);

// A client in the background that opens a fresh connection per GET / on `port`, one after
// another, until stop(): counts answers and failures (refused, reset, timed out, non-200).
class LoadClient {
 public:
  explicit LoadClient(int port, Ms request_timeout = 10s);
  ~LoadClient();
  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;

  struct Stats {
    int answered = 0;
    int failed = 0;
    std::vector<std::string> failures;  // when and what, for the report (first few)
    std::set<pid_t> pids;               // workers that answered
  };
  // Waits until at least `n` more requests have been answered, or the deadline.
  bool wait_answered(int n, Ms deadline = default_deadline);
  // Stops the client and returns what it saw.
  Stats stop();
  [[nodiscard]] int answered() const { return answered_.load(); }

 private:
  void run();

  int port_;
  Ms timeout_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::mutex mutex_;
  Stats stats_;
  std::chrono::steady_clock::time_point started_;
  std::thread thread_;
};

std::string describe(const LoadClient::Stats& s);

}  // namespace bt
