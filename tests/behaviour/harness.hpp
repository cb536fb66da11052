#pragma once
// Behaviour-test harness: runs the real preforkd on a config written to a temp dir,
// talks HTTP to its workers on 127.0.0.1, and waits for conditions with deadlines.

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace bt {

using namespace std::chrono_literals;
using Ms = std::chrono::milliseconds;

// Generous: the machines are small and noisy. Conditions are polled, never slept on.
inline constexpr Ms default_deadline = 30s;

// Polls `cond` every few ms until it holds or the deadline passes.
bool wait_until(const std::function<bool()>& cond, Ms deadline = default_deadline);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

struct HttpResponse {
  int status = 0;
  std::string body;
};
// One request on a fresh connection ("Connection: close"); nullopt on connect error,
// reset or timeout.
std::optional<HttpResponse> http_get(int port, const std::string& path, Ms timeout = 10s);

// The pid in "hello from worker <slot> (pid <pid>)".
struct Hello {
  int slot = -1;
  pid_t pid = -1;
};
std::optional<Hello> hello(int port, Ms timeout = 10s);

// Asks GET / until `count` distinct workers answered (or the deadline): slot -> pid.
std::vector<Hello> distinct_workers(int port, int count, Ms deadline = default_deadline);

bool process_alive(pid_t pid);  // exists and is not a zombie
// Processes whose environment has PREFORK_MASTER_PID=<master> (workers and their children).
std::vector<pid_t> processes_of_master(pid_t master);
// The pid of the worker in `slot` of `master`, from /proc (-1 when none).
pid_t worker_pid(pid_t master, int slot);

std::string demo_bin();
std::string fixture(const std::string& name);

// A running preforkd. The destructor kills it (and so, through the parent-death
// signal, its workers) and reaps it, so a failing test leaves nothing behind.
class Daemon {
 public:
  // Writes `config_toml` to <dir>/app.toml and starts preforkd --config on it.
  explicit Daemon(const std::string& config_toml, std::vector<std::string> extra_args = {});
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

}  // namespace bt
