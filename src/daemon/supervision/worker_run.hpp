#pragma once
// The supervisor's own state of each slot and worker run: timers, output pipes, cgroups,
// notify sockets. Private to supervision: only src/daemon/supervision/*.cpp include this;
// everyone else reads the values of Supervisor::view() (slot_view.hpp).

#include <preforkd/daemon/supervision/supervisor.hpp>
#include <preforkd/daemon/uv/line_reader.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace preforkd::daemon {

// One worker lifecycle in a slot: a sequence of processes (a crash is followed by a
// replacement in the same run, so the backoff carries over).
struct WorkerRun {
  int slot = 0;
  std::shared_ptr<const Generation> gen;
  Lifecycle life;
  pid_t pid = -1;
  pid_t last_pid = -1;  // of its last process once it exited: the messages about its end name it
  Clock::time_point started{};
  std::chrono::system_clock::time_point started_wall{};  // the same on the wall clock, for status
  bool reached_ready = false;  // the current process has been ready
  std::unique_ptr<Timer> timer;
  std::unique_ptr<Timer> watchdog;
  std::unique_ptr<LineReader> out;
  std::unique_ptr<LineReader> err;
  int exec_errno = 0;  // of the current process: it never ran the program (os::SpawnedProcess)
  std::optional<LastExit> exit;  // how its last process ended, for a report_crash
  std::string spawn_error;    // why the last spawn failed, for its report
  // The run's own NOTIFY_SOCKET, made before its first process starts when the generation
  // speaks sd_notify (ready = "notify" or a watchdog), kept while the run lasts (its
  // replacements after a crash get the same one) and closed when it leaves: what arrives
  // there is this run's, whatever pid it claims.
  std::unique_ptr<NotifySocket> notify;
  std::string notify_status;  // last STATUS= from the worker
  bool notified_stopping = false;
  bool notify_refusal_logged = false;  // a message from a process not its worker was logged
  std::string stall_note;  // set when it was found stalled: "3 connections queued, none taken for 1.2s"
  Usage usage;  // sampled every few seconds
  // The cgroup of the current process and its descendants (none without worker cgroups).
  std::unique_ptr<os::WorkerCgroup> cgroup;
  // Without a cgroup: the process's descendants as last seen, killed when it exits (a
  // setsid() escapes its process group, and by then they have been re-parented).
  std::vector<os::ProcessId> known_tree;
  int cpu = -1;  // the CPU the process is pinned to (worker.cpu_affinity), -1: not pinned
};

// What a message about `run` is about, for the JSON log: its slot, its process (or the
// one that just exited) and its generation.
[[nodiscard]] LogFields log_fields(const WorkerRun& run);

struct Slot {
  std::unique_ptr<WorkerRun> current;
  std::unique_ptr<WorkerRun> candidate;              // its replacement, starting (rolling update)
  std::vector<std::unique_ptr<WorkerRun>> retiring;  // replaced runs, stopping
  bool removing = false;                             // scaled away: goes once its runs are gone
  // The adaptive pool keeps no worker here (supervisor_pool.cpp): its sockets stay held
  // and steered around; a worker it retired serves the queue until drain_until, then stops.
  bool parked = false;
  Clock::time_point drain_until{};                   // while removing: serve the queue until then
  int restarts = 0;                                  // processes started after the first, for any reason
  std::optional<LastExit> last_exit;                 // the last unplanned exit (crash)
  int crashes = 0;                                   // unplanned exits
  int replacements = 0;                              // planned replacements, of every reason
  std::map<ReplaceReason, int> replaced_for;         // the same, by reason
  bool had_process = false;                          // a process has been started in it
  std::optional<int> first_exec_errno;               // the exec errno of its first process (0: it ran)

  void count_replacement(ReplaceReason why) {
    ++replacements;
    ++replaced_for[why];
  }
};

template <class F>
void Supervisor::for_each_run(F&& f) {
  for (auto& slot : slots_) {
    if (slot.current) f(*slot.current);
    if (slot.candidate) f(*slot.candidate);
    for (auto& r : slot.retiring) f(*r);
  }
}

}  // namespace preforkd::daemon
