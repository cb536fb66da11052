#pragma once
// The supervisor: worker slots, their runs, and the listening sockets they share.
// Every input arrives as a call on the loop (a child exit, a timer, a notify message,
// a control request) and becomes an Event for the run it concerns; the actions that
// step() returns are carried out here and nowhere else.

#include <preforkd/core/config.hpp>
#include <preforkd/core/worker_lifecycle.hpp>
#include <preforkd/daemon/line_reader.hpp>
#include <preforkd/daemon/timer.hpp>
#include <preforkd/os/listener_set.hpp>
#include <preforkd/os/spawn.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace preforkd::daemon {

using Clock = std::chrono::steady_clock;

struct LastExit {
  ExitStatus status;
  std::chrono::system_clock::time_point when;
};

// One worker lifecycle in a slot: a sequence of processes (a crash is followed by a
// replacement in the same run, so the backoff carries over).
struct WorkerRun {
  int slot = 0;
  int generation = 0;
  Lifecycle life;
  pid_t pid = -1;
  Clock::time_point started{};
  bool reached_ready = false;  // the current process has been ready
  std::unique_ptr<Timer> timer;
  std::unique_ptr<LineReader> out;
  std::unique_ptr<LineReader> err;
  os::Fd exec_report;
  std::string notify_status;  // last STATUS= from the worker
};

struct Slot {
  std::unique_ptr<WorkerRun> current;
  std::vector<std::unique_ptr<WorkerRun>> retiring;  // replaced runs still stopping
  int restarts = 0;                                  // processes started after the first
  std::optional<LastExit> last_exit;
};

enum class StopMode { graceful, fast };

// What the generation of workers is started from: resolved once per config.
struct LaunchPlan {
  WorkerConfig worker;
  std::string executable;
  std::optional<os::Credentials> credentials;
  os::OutputMode output = os::OutputMode::capture;
  int generation = 0;
};

class Supervisor {
 public:
  Supervisor(uv_loop_t* loop, Config config, LaunchPlan plan, os::ListenerSet listeners);
  ~Supervisor();

  void start();
  void stop(StopMode mode);
  // Called on SIGCHLD: reaps every exited child and feeds worker exits to their runs.
  void reap_children();
  // Runs once no worker (and no orphaned descendant) is left after stop().
  std::function<void()> on_finished;

  [[nodiscard]] const Config& config() const { return config_; }
  [[nodiscard]] const std::vector<Slot>& slots() const { return slots_; }
  [[nodiscard]] const os::ListenerSet& listeners() const { return listeners_; }
  [[nodiscard]] int generation() const { return plan_.generation; }
  [[nodiscard]] bool stopping() const { return stopping_; }

 private:
  void dispatch(WorkerRun& run, const Event& event);
  void perform(WorkerRun& run, const Action& action);
  void spawn_process(WorkerRun& run);
  void on_worker_exit(WorkerRun& run, const ExitStatus& status);
  std::unique_ptr<WorkerRun> make_run(int slot);
  WorkerRun* find_run(pid_t pid);
  void update_steering();
  void check_finished();
  [[nodiscard]] std::string who(const WorkerRun& run) const;

  uv_loop_t* loop_;
  Config config_;
  LaunchPlan plan_;
  LifecyclePolicy policy_;
  os::ListenerSet listeners_;
  std::vector<Slot> slots_;
  std::unordered_map<pid_t, WorkerRun*> by_pid_;
  std::vector<std::string> master_env_;
  std::mt19937_64 rng_;
  bool stopping_ = false;
  bool finished_ = false;
};

}  // namespace preforkd::daemon
