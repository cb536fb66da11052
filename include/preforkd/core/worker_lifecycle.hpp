#pragma once
// The lifecycle of one worker run in a slot, as a pure function:
//   step(lifecycle, event, policy) -> (next lifecycle, actions)
// No fork, no clock and no event loop in here: the supervisor turns signals, child
// exits, timers and notify messages into events, and carries out the actions.
// One timer per worker run; what it means depends on the state (ready delay, ready
// timeout, backoff, stop timeout).

#include <preforkd/core/config.hpp>
#include <preforkd/core/exit_status.hpp>
#include <preforkd/core/restart_policy.hpp>
#include <preforkd/core/units.hpp>

#include <array>
#include <vector>

namespace preforkd {

enum class WorkerState {
  stopped,   // no process and none wanted (not started yet, removed, or a clean exit not replaced)
  starting,  // spawned, not ready yet
  ready,     // serving
  stopping,  // asked to stop, waiting for its exit
  backoff,   // crashed; waiting before the next try
  failed,    // gave up: a fatal exit code, or a failure that is not restarted
};
[[nodiscard]] const char* to_string(WorkerState s);
// A state in which a process exists.
[[nodiscard]] bool has_process(WorkerState s);

enum class StopIntent {
  remove,   // stay stopped once it has exited
  replace,  // start a new process once it has exited (restart, watchdog)
};

// Why a worker was replaced on purpose: a planned replacement, counted apart from
// crashes (unplanned exits). Recycling (memory, lifetime, stalled) adds its own.
enum class ReplaceReason {
  reload,   // a reload rolled a new generation onto the slot (or rolled it back)
  restart,  // preforkctl restart
  scale,    // a slot being scaled away was kept again, with a new process
  memory,   // recycled: its tree stayed above worker.max_memory
  lifetime, // recycled: it had run for worker.max_lifetime (with jitter)
};
[[nodiscard]] const char* to_string(ReplaceReason r);
// Every reason, for counters that show each one from the start (/metrics): a new reason goes here too.
inline constexpr std::array<ReplaceReason, 5> replace_reasons{ReplaceReason::reload, ReplaceReason::restart,
                                                              ReplaceReason::scale, ReplaceReason::memory,
                                                              ReplaceReason::lifetime};

struct LifecyclePolicy {
  ReadyPolicy ready;
  Duration ready_timeout = std::chrono::seconds(30);
  Duration stop_timeout = std::chrono::seconds(30);
  RestartPolicy restart;
  // A stalled worker gets SIGKILL this long after its stop signal (stop_timeout, at most
  // stalled_kill_after_max): it has shown it makes no progress, and clients wait on it.
  Duration stall_kill_after = std::chrono::seconds(1);

  [[nodiscard]] static LifecyclePolicy from(const WorkerConfig& worker);
};

// The longest a stalled worker gets between its stop signal and SIGKILL: long enough for
// a handler to log where it hung, short for the connections queued behind it.
inline constexpr Duration stalled_kill_after_max = std::chrono::seconds(1);

struct Lifecycle {
  WorkerState state = WorkerState::stopped;
  int failures = 0;                           // consecutive crashes, for the backoff
  StopIntent stop_intent = StopIntent::remove;  // meaningful while stopping
  ReplaceReason replace_reason = ReplaceReason::restart;  // while stopping to be replaced: why
  bool stop_is_failure = false;               // stopping because of a ready or watchdog timeout
  // A trial run (a rolling update's candidate) until it is ready: a failure before then
  // is never restarted (the rolling plan decides what follows), and is not reported here.
  bool trial = false;
  // Retrying after a spawn failed for want of file descriptors: reported once, not per try.
  bool short_of_fds = false;
  // Backing off after a process whose exec failed: its one report said when the next try
  // comes, so that try starts without another line. (Not in the upgrade state: after an
  // upgrade, at most one "starting again" line more.)
  bool exec_failed = false;
  bool operator==(const Lifecycle&) const = default;
};

// Why a spawn failed before there was a process.
enum class SpawnFailure {
  error,        // anything else: counts as a crash of the worker
  fd_shortage,  // EMFILE/ENFILE: the master's shortage, not the worker's; retried after backoff_initial
};

struct Event {
  enum class Kind {
    start,             // begin (or retry now) a run: from stopped, failed or backoff (`trial` for a candidate)
    spawned,           // the process exists
    spawn_failed,      // fork or set-up failed before there was a process
    timer,             // the run's timer fired
    ready_notified,    // READY=1 from the worker
    watchdog_expired,  // no WATCHDOG=1 within the period
    stop,              // graceful stop (stop_signal, then SIGKILL after stop_timeout)
    kill,              // SIGKILL now, stay stopped
    exited,            // waitpid reported the process's end
    stalled,           // its accept queue holds connections it has not taken for stall_timeout
    seen_accepting,    // its tree was seen waiting for connections on its own socket (ready = "accepting")
  };
  Kind kind = Kind::start;
  StopIntent intent = StopIntent::remove;  // for stop
  ReplaceReason reason = ReplaceReason::restart;  // for stop with intent replace
  ExitStatus status;                       // for exited
  bool was_ready = false;                  // for exited: the run had reached ready
  Duration uptime{};                       // for exited
  double jitter = 0.5;                     // for exited and spawn_failed: a draw in [0,1)
  bool trial = false;                      // for start: a rolling update's candidate
  SpawnFailure spawn_failure = SpawnFailure::error;  // for spawn_failed
  // For spawned and exited: the errno of the process's failed exec (it never ran the
  // program, and exits at once), 0 when it runs the program.
  int exec_errno = 0;

  [[nodiscard]] static Event of(Kind k) {
    Event e;
    e.kind = k;
    return e;
  }
  [[nodiscard]] static Event start_trial() {
    Event e = of(Kind::start);
    e.trial = true;
    return e;
  }
  [[nodiscard]] static Event spawn_failed_with(SpawnFailure why, double jitter) {
    Event e = of(Kind::spawn_failed);
    e.spawn_failure = why;
    e.jitter = jitter;
    return e;
  }
  [[nodiscard]] static Event stop_for(StopIntent why) {
    Event e = of(Kind::stop);
    e.intent = why;
    return e;
  }
  // A planned replacement: stop gracefully, then start a new process.
  [[nodiscard]] static Event replace_for(ReplaceReason reason) {
    Event e = stop_for(StopIntent::replace);
    e.reason = reason;
    return e;
  }
};

struct Action {
  enum class Kind {
    spawn,             // start the process; answer with spawned or spawn_failed
    send_stop_signal,  // the configured stop_signal
    send_kill,         // SIGKILL
    arm_timer,         // (re)arm the run's timer with `delay`
    disarm_timer,
    // Reports: every message about a transition comes from here, not from comparing states.
    report_ready_timeout,  // for the log and for a reload waiting on this run
    report_watchdog,       // for the log
    report_stop_timeout,   // did not stop within stop_timeout: SIGKILL follows
    report_failed,         // gave up: not restarted
    report_backoff,        // a crash: the next try in `delay` (the run's failures count)
    report_restart,        // a replacement process starts in the same run
    report_spawn_failed,   // could not start, counted as a crash (what follows is reported too)
    report_spawn_retry,    // could not start for want of file descriptors: retried in `delay`
    // Its exec failed (Event::exec_errno): the one line about that attempt, at warn, with
    // what follows (the next try in `delay`, at once, or none) instead of report_backoff
    // and report_restart.
    report_exec_failed,
    // Counters: every exit is either a crash or planned, and this decides which.
    report_crash,     // an unplanned exit (a crash, a clean exit not asked for, a watchdog or
                      // ready timeout): counts as a crash and is the slot's last exit
    report_replaced,  // a process stopped on purpose is being replaced (`reason`)
    report_stalled,        // for the log: stalled, stopping it
    send_continue,         // SIGCONT, so that a stopped (SIGSTOP) worker gets its stop signal
  };
  Kind kind;
  Duration delay{};
  ReplaceReason reason = ReplaceReason::restart;  // for report_replaced
  bool operator==(const Action&) const = default;
};

struct Transition {
  Lifecycle next;
  std::vector<Action> actions;
};

[[nodiscard]] Transition step(const Lifecycle& current, const Event& event, const LifecyclePolicy& policy);

// What a "not ready within ..." report adds for `kind`, so the operator learns what was
// waited for: "" or "; it never waited for connections on its socket (...)".
[[nodiscard]] const char* not_ready_hint(ReadyKind kind);

}  // namespace preforkd
