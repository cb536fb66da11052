#pragma once
// Behaviour-test harness: runs the real preforkd on a config written to a temp dir,
// talks HTTP to its workers on 127.0.0.1, and waits for conditions with deadlines.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "../support/test_support.hpp"

namespace bt {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// Generous: the machines are small and noisy. Conditions are polled, never slept on.
inline constexpr Ms default_deadline = 30s;

// Polls `cond` every few ms until it holds or the deadline passes.
bool wait_until(const std::function<bool()>& cond, Ms deadline = default_deadline);

using testsupport::TempDir;

using testsupport::free_port;

// "127.0.0.1:<port>", the address of a [[listen]] entry.
std::string local_address(int port);

// A config that runs the demo worker (or `command`) under preforkd, for one listener.
// Extra [worker] and [preforkd] keys go in as raw TOML lines.
struct DemoConfig {
  std::string address{};  // "127.0.0.1:<port>" or "unix:/path"
  int count = 2;
  std::vector<std::string> args{};  // flags for the demo worker
  std::string ready = "immediate";
  std::string stop_timeout = "10s";
  std::string worker{};                // more [worker] lines, e.g. "restart = \"never\"\n"
  std::string preforkd{};              // [preforkd] lines
  std::vector<std::string> command{};  // replaces the demo worker (and `args`) when set
};
std::string toml(const DemoConfig& c);
// A TOML basic string: "text", with quotes and backslashes escaped.
std::string toml_string(const std::string& text);

struct HttpResponse {
  int status = 0;
  std::string body;
};
// One request on a fresh connection ("Connection: close"); nullopt on connect error,
// reset or timeout.
std::optional<HttpResponse> http_get(int port, const std::string& path, Ms timeout = 10s);
// The same over a unix stream socket at `socket_path`.
std::optional<HttpResponse> http_get_unix(const std::string& socket_path, const std::string& path, Ms timeout = 10s);

// A request sent now and answered later: connects (non-blocking) and sends the request
// in the constructor; response() waits for the answer. For connections made while no
// worker accepts, whose answer comes once one is back.
class PendingGet {
 public:
  PendingGet(int port, const std::string& path);
  ~PendingGet();
  PendingGet(PendingGet&& other) noexcept;
  PendingGet(const PendingGet&) = delete;
  PendingGet& operator=(const PendingGet&) = delete;
  PendingGet& operator=(PendingGet&&) = delete;
  // False when connect or send already failed (refused, reset).
  [[nodiscard]] bool sent() const { return sent_; }
  // The peer's kernel has acknowledged the whole request (it sits in the receiving
  // socket, read or not).
  [[nodiscard]] bool delivered() const;
  // Waits up to `timeout` for the whole response; nullopt on reset, timeout or garbage.
  std::optional<HttpResponse> response(Ms timeout = 10s);

 private:
  int fd_ = -1;
  bool sent_ = false;
};

// The pid in "hello from worker <slot> (pid <pid>)".
struct Hello {
  int slot = -1;
  pid_t pid = -1;
};
std::optional<Hello> hello(int port, Ms timeout = 10s);
// Parses a "hello from worker <slot> (pid <pid>)" body.
std::optional<Hello> parse_hello(const std::string& body);

// Asks GET / until `count` distinct workers answered (or the deadline): slot -> pid.
std::vector<Hello> distinct_workers(int port, int count, Ms deadline = default_deadline);

// What clients saw during hello_load().
struct LoadStats {
  int answered = 0;  // 200 with a hello body
  int failed = 0;    // refused, reset, timed out or a bad answer
  int slow = 0;      // answered, but later than `slow`
  Ms slowest{0};
  std::map<int, int> by_slot;  // answers per worker slot
};
// For `duration`, `clients` threads each open fresh connections one after another and
// ask GET / once per connection, with a per-request `timeout`. `pause` paces each client.
LoadStats hello_load(int port, Ms duration, int clients = 1, Ms pause = 0ms, Ms timeout = 5s, Ms slow = 1s);

bool process_alive(pid_t pid);  // exists and is not a zombie
// The parent pid of `pid`, from /proc/<pid>/stat (-1 when it is gone).
pid_t parent_of(pid_t pid);
// Processes whose environment has PREFORK_MASTER_PID=<master> (workers and their children).
std::vector<pid_t> processes_of_master(pid_t master);
// Waits until no process of `master` is left; true when none is.
bool no_process_left(pid_t master, Ms deadline = default_deadline);
// How many sockets `pid` has open (listening and connected), from /proc/<pid>/fd.
int open_sockets(pid_t pid);
// The pid of the worker in `slot` of `master`, from /proc (-1 when none).
pid_t worker_pid(pid_t master, int slot);

std::string demo_bin();
std::string fixture(const std::string& name);

// Sockets handed to a preforkd as systemd hands its fd store back on a restart: at fds
// 3, 4, … with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (the child's own pid).
struct PassedFds {
  std::vector<int> fds{};
  std::string names{};  // the LISTEN_FDNAMES value
  // What systemd would not pass: another LISTEN_PID than preforkd's own ("" for its own),
  // another LISTEN_FDS than the number of fds (0 for that number).
  std::string listen_pid{};
  int listen_fds = 0;
  // Close `fds` in the test process before preforkd runs (it waits for that), so that
  // preforkd holds the only copies from its first instruction on.
  bool close_in_test = false;
};

// A running preforkd. The destructor kills it (and so, through the parent-death
// signal, its workers) and reaps it, so a failing test leaves nothing behind.
class Daemon {
 public:
  // Writes `config_toml` to <dir>/app.toml and starts preforkd --config on it. With
  // `pending_signal`, preforkd starts with that signal blocked and already pending, as if it
  // had been sent in its first instant (before any handler could be in place).
  // With `passed`, preforkd starts with those sockets as systemd would pass them.
  explicit Daemon(const std::string& config_toml, std::vector<std::string> extra_args = {}, int pending_signal = 0,
                  const PassedFds& passed = {});
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::string config_path() const { return dir_.file("app.toml"); }
  [[nodiscard]] const TempDir& dir() const { return dir_; }
  // Everything preforkd wrote to stdout and stderr so far.
  [[nodiscard]] std::string log() const;
  bool wait_log(const std::string& needle, Ms deadline = default_deadline) const;
  // Number of times `needle` occurs in the log.
  [[nodiscard]] int count_log(const std::string& needle) const;
  void signal(int sig) const;
  // Waits for the master to exit; its exit code (128+N for a signal), or nullopt on timeout.
  std::optional<int> wait_exit(Ms deadline = default_deadline);
  [[nodiscard]] bool running() const { return !exited_; }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

// Runs preforkd to completion (e.g. --check) and returns {exit code, output}.
std::pair<int, std::string> run_preforkd(const std::vector<std::string>& args, Ms deadline = default_deadline);
// The same for any command line (argv[0] an absolute path).
std::pair<int, std::string> run_command(const std::vector<std::string>& argv, Ms deadline = default_deadline);

}  // namespace bt
