#pragma once
// The supervisor: worker slots, their runs, and the listening sockets they share.
// Every input arrives as a call on the loop (a child exit, a timer, a notify message,
// a control request) and becomes an Event for the run it concerns. The executor is not
// reentrant: events go on one queue that one loop drains, as s6-supervise does; carrying
// out an action returns the events it causes (a spawn: spawned or spawn_failed), which
// join the queue, and so do the rolling plan's events (a candidate ready, a run gone). The actions of step() and roll_step() are carried out here and
// nowhere else, and every message about a transition comes from one of those actions.

#include <preforkd/core/config.hpp>
#include <preforkd/core/drain_queue.hpp>
#include <preforkd/core/exec_failure.hpp>
#include <preforkd/core/master_state.hpp>
#include <preforkd/core/notify_message.hpp>
#include <preforkd/core/output_ring.hpp>
#include <preforkd/core/rolling_plan.hpp>
#include <preforkd/core/scale_plan.hpp>
#include <preforkd/core/worker_lifecycle.hpp>
#include <preforkd/daemon/log/logging.hpp>
#include <preforkd/daemon/supervision/slot_changes.hpp>
#include <preforkd/daemon/supervision/slot_view.hpp>
#include <preforkd/daemon/supervision/worker_input.hpp>
#include <preforkd/daemon/uv/notify_socket.hpp>
#include <preforkd/daemon/uv/timer.hpp>
#include <preforkd/os/cgroup.hpp>
#include <preforkd/os/listener_set.hpp>
#include <preforkd/os/process_tree.hpp>
#include <preforkd/os/spawn.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace preforkd::daemon {

// What a generation of workers is started from. A reload that changes what workers
// run makes a new one; runs keep theirs until they are replaced. The listening sockets
// are not part of it: they belong to the supervisor.
struct Generation {
  int number = 0;  // PREFORK_GENERATION: the reload count
  WorkerConfig worker;
  std::string executable;
  std::string directory;  // the workers' working directory, absolute: a relative command resolves there
  std::string path_env;   // the PATH `executable` was searched in
  std::optional<os::Credentials> credentials;
  os::OutputMode output = os::OutputMode::capture;
  LifecyclePolicy policy;

  // "cannot execute 'x': ... (not found in PATH=...; working directory '...')".
  [[nodiscard]] std::string exec_failure(int exec_errno) const {
    return describe_exec_failure({worker.command.front(), executable, directory, path_env, exec_errno});
  }
};

// A worker run and a slot, with their timers, pipes, cgroups and notify sockets, are
// the supervisor's own (src/daemon/supervision/worker_run.hpp); others read their
// values through view() (slot_view.hpp).
struct WorkerRun;
struct Slot;

enum class StopMode { graceful, fast };

// The outcome of an operation that may take a while (reload, restart, scale).
using Done = std::function<void(Status result, std::string message)>;

class Supervisor {
 public:
  Supervisor(uv_loop_t* loop, std::shared_ptr<const Generation> gen, os::ListenerSet listeners);
  ~Supervisor();

  [[nodiscard]] Status start();
  void stop(StopMode mode);
  // Called on SIGCHLD: reaps every exited child and feeds worker exits to their runs.
  void reap_children();
  // A datagram on the notify socket an older image shared among all its workers (after an
  // upgrade from it), attributed by the sender's pid, for runs that still use it.
  void on_shared_notify(pid_t sender, const NotifyMessage& message);

  // Sets the worker count; the slots converge to the latest count asked for. New slots
  // start at once; removed slots (the highest) stop gracefully once no new connection
  // can reach them; a slot still being removed is kept again when the count grows back.
  // Operations are serialised by daemon/operations: never called during a rolling update.
  [[nodiscard]] Status scale(int count);
  // The adaptive pool (supervisor_pool.cpp; decided by daemon/operations/pool). Starts a
  // worker of the current generation in each of `slots`, parked until now.
  [[nodiscard]] Status pool_start(const std::vector<int>& slots);
  // Parks `slot`: no new connection reaches it; what is queued there is served, then its
  // worker stops gracefully. Its sockets stay held.
  [[nodiscard]] Status pool_retire(int slot);
  // Slots the pool may act on now: no rolling update, stop or scale in progress.
  [[nodiscard]] bool pool_may_act() const;
  // Replaces the runs of `slots` (every live one when empty: not those a scale down is
  // removing, nor those the adaptive pool parked) one by one with fresh processes of
  // `gen`, each new one ready before the old one stops; rolls back if one never is.
  // `listeners`, when given, are the sockets of `gen`: they replace the current ones if
  // the update succeeds.
  void roll(std::shared_ptr<const Generation> gen, std::vector<int> slots, Done done,
            std::unique_ptr<os::ListenerSet> listeners = nullptr);
  // The sockets for a reloaded config's listeners, sharing the kernel sockets of the
  // current ones where the address is the same (os::ListenerSet::reopen); for roll().
  [[nodiscard]] Result<std::unique_ptr<os::ListenerSet>> reopen_listeners(const std::vector<ListenConfig>& configs);
  // Takes a new generation whose policy applies to every run, without new processes.
  void adopt(std::shared_ptr<const Generation> gen);
  // Recycling (daemon/recycler.cpp): a one-slot rolling update of the current generation
  // for each of `slots` (reasons[i] is why slots[i] goes: memory, lifetime), each new
  // worker ready before its old one stops; a new one that never gets ready is dropped and
  // the old one keeps serving.
  void recycle(std::vector<int> slots, std::vector<ReplaceReason> reasons, Done done);
  // Every worker from now on runs in a cgroup of its own under `tree` (supervisor_tree.cpp).
  void use_cgroups(std::unique_ptr<os::CgroupTree> tree) { cgroups_ = std::move(tree); }
  [[nodiscard]] bool uses_cgroups() const { return cgroups_ != nullptr; }
  // The sampler's look at the tree of the current run of `slot`: without a cgroup, the
  // descendants seen now are remembered, to be killed with it.
  [[nodiscard]] os::TreeUsage sample_tree(int slot);

  // Runs once no worker (and no orphaned descendant) is left after stop().
  std::function<void()> on_finished;
  // Each line read from a worker's stdout or stderr, after it was logged (preforkctl logs).
  std::function<void(int slot, pid_t pid, OutputStream stream, std::string_view text)> on_output;
  // When set, steers new connections within `live` (the slots that may take them)
  // instead of to all of them (the balancer, for balance = "load").
  std::function<void(const std::vector<int>& live)> on_steer;

  // The slots as they are now, by index (slot_view.hpp): what observers read.
  [[nodiscard]] std::vector<SlotView> view() const;
  // The same for one slot; nullopt when there is no slot `slot`.
  [[nodiscard]] std::optional<SlotView> view_of(int slot) const;
  // Slots present, including those still being removed (view().size()).
  [[nodiscard]] int slot_count() const;
  // What the watches and the usage sampler tell back (worker_input.hpp).
  void submit(WorkerInput input);
  // After a drain of the queue, `observer` is told which of `kinds` changed since the
  // observers were last told (slot_changes.hpp), once steering has followed; observers
  // are told in the order they subscribed.
  void subscribe(Changes kinds, std::function<void(Changes)> observer);
  // The inodes of the sockets process `pid` of `slot` was given (a rolling update's
  // candidate may have new ones), to recognise them in /proc; empty when `pid` is no
  // worker of `slot`.
  [[nodiscard]] std::vector<ino_t> socket_inodes(int slot, pid_t pid) const;
  [[nodiscard]] const Generation& generation() const { return *gen_; }
  [[nodiscard]] std::shared_ptr<const Generation> generation_ptr() const { return gen_; }
  [[nodiscard]] const os::ListenerSet& listeners() const { return *listeners_; }
  // Steers new connections to `live` slots (hash listeners) and to `balanced`, a subset of
  // them, for balance = "load" listeners (see ListenerSet::steer): the balancer's way in.
  [[nodiscard]] Status steer(const std::vector<int>& live, const std::vector<int>& balanced) {
    listeners_->pack_load(packs_load());
    return listeners_->steer(live, balanced);
  }
  // An adaptive pool packs new connections on the lowest waiting workers, so that the
  // workers above what the load needs wait and retire; a static pool spreads them.
  [[nodiscard]] bool packs_load() const { return gen_->worker.pool.mode != PoolMode::fixed; }
  [[nodiscard]] bool stopping() const { return stopping_; }
  [[nodiscard]] int target_count() const { return target_count_; }
  [[nodiscard]] int ready_count() const;
  // Per slot, the exec errno of its first process (nullopt: none started yet), for
  // judge_start: whether the workers can be executed at all.
  [[nodiscard]] std::vector<std::optional<int>> first_exec_errnos() const;
  // Rolling updates that failed and rolled back since start (for status and metrics).
  [[nodiscard]] int rollbacks() const { return rollbacks_; }

  // In-place upgrade (supervisor_state.cpp). Why the state cannot be handed on now (a
  // rolling update, a stop, a scale still draining), or "" when it can.
  [[nodiscard]] std::string handoff_blocker() const;
  // Every slot's run as it is now: pids, lifecycle, remaining timer times, output pipes.
  [[nodiscard]] std::vector<SlotState> handoff();
  // Instead of start() in the new image: takes the slots back without spawning anything
  // (the processes are still our children), re-arms the timers with their remaining
  // time and reads the same output pipes. Then reaps whatever exited meanwhile.
  [[nodiscard]] Status resume(const std::vector<SlotState>& slots);

 private:
  // A rolling update in progress: the pure plan (core/rolling_plan) and what it needs
  // to carry out its actions (rolling_update.cpp).
  struct RollingUpdate {
    RollingPlan plan;
    std::shared_ptr<const Generation> target;
    std::shared_ptr<const Generation> previous;  // what switched slots roll back to
    std::unique_ptr<os::ListenerSet> listeners;  // the target's own sockets, if it has new ones
    ReplaceReason reason = ReplaceReason::reload;  // restart when the generation stays
    std::map<int, ReplaceReason> slot_reasons;     // a recycle: why each slot goes
    Done done;
  };
  // One item of the executor's one queue: an event for a run, or one for the rolling
  // update in progress (`roll`, with no run).
  struct Queued {
    WorkerRun* run = nullptr;
    Event event;
    std::optional<RollEvent> roll;
  };

  // The executor: post() queues an event; run_queue() drains the queue, then settles.
  void post(WorkerRun& run, Event event);
  void run_queue();
  void apply(WorkerRun& run, const Event& event);
  // Carries out one action; returns the events it causes (supervisor_actions.cpp).
  [[nodiscard]] std::vector<Event> perform(WorkerRun& run, const Action& action);
  void report(const WorkerRun& run, const Action& action) const;
  // A new process for `run` (supervisor_spawn.cpp): spawned, or spawn_failed.
  [[nodiscard]] std::vector<Event> spawn_process(WorkerRun& run);
  void settle();
  void on_worker_exit(WorkerRun& run, const ExitStatus& status);
  void send_signal(const WorkerRun& run, pid_t target, int signum) const;
  // Worker trees (supervisor_tree.cpp): the cgroup a new process goes into, the
  // descendants remembered before a stop, and what is left once the top process exits.
  // The cgroup the next process of `run` starts in (run.cgroup) and its open directory for
  // spawn; no fd without worker cgroups or when none could be made.
  [[nodiscard]] os::Fd prepare_cgroup(WorkerRun& run);
  void make_spare_cgroups();  // for the slots in spare_wanted_
  // Slots a start() or scale() leaves without a worker: all but min_count with an adaptive pool.
  [[nodiscard]] bool starts_parked(int slot) const;
  void adopt_cgroup(WorkerRun& run);  // after an upgrade: the running worker's own cgroup
  void remember_tree(WorkerRun& run);
  void kill_tree(WorkerRun& run);
  // After the top process exited: the same, but a cgroup is killed by kill_exited_cgroups()
  // when the queue has been drained, i.e. after the replacement has started.
  void kill_tree_after_queue(WorkerRun& run);
  void kill_exited_cgroups();
  void remove_dead_cgroups();
  // Before a spawn (supervisor_socket_flags.cpp): O_NONBLOCK as the config says on each of
  // `fds` (the sockets `run` gets from `listeners`) that no other worker process holds.
  void hand_over_socket_flags(const WorkerRun& run, const os::ListenerSet& listeners, const std::vector<int>& fds);
  [[nodiscard]] Result<std::unique_ptr<WorkerRun>> make_run(int slot, std::shared_ptr<const Generation> gen);
  WorkerRun* find_run(pid_t pid);
  // sd_notify (supervisor_notify.cpp): the run's own socket, made when its process needs one.
  [[nodiscard]] Result<Ok, NotifySocketError> open_notify_socket(WorkerRun& run);
  [[nodiscard]] Status adopt_notify_socket(WorkerRun& run, int fd, std::string address);  // after an upgrade
  void on_notify(WorkerRun& run, pid_t sender, const NotifyMessage& message);
  void arm_watchdog(WorkerRun& run);
  void read_output(WorkerRun& run, os::Fd out, os::Fd err);
  void update_steering();
  // Steers and tells the subscribers what changed since they were last told.
  void publish();
  void collect_finished_runs();
  // Stops a run that leaves its slot (replaced, dropped, removed): it stays in the
  // slot's retiring list until it has no process, then goes.
  void put_out(Slot& slot, std::unique_ptr<WorkerRun> run);
  void retire(std::unique_ptr<WorkerRun> run);
  // Scaling (supervisor_scale.cpp): the slots as core/scale_plan sees them; settling.
  [[nodiscard]] std::vector<ScaleSlotFacts> scale_facts() const;
  void remove_drained_slots();
  void check_finished();
  [[nodiscard]] const os::ListenerSet& listeners_for(const WorkerRun& run) const;
  // The inodes of the sockets `run`'s process was given, to recognise them in /proc.
  [[nodiscard]] std::vector<ino_t> socket_inodes_of(const WorkerRun& run) const;
  // Rolling updates (rolling_update.cpp).
  void begin_roll(std::shared_ptr<const Generation> gen, std::vector<int> slots, Done done,
                  std::unique_ptr<os::ListenerSet> listeners, std::map<int, ReplaceReason> slot_reasons);
  void after_candidate_change(WorkerRun& run, const Event& cause);
  // Posts an event for the rolling plan on the executor's queue; step_roll() handles it there.
  void roll_event(RollEvent event);
  void step_roll(const RollEvent& event);
  void carry_out(const RollAction& action);
  [[nodiscard]] std::string who(const WorkerRun& run) const;
  template <class F>
  void for_each_run(F&& f);  // worker_run.hpp

  uv_loop_t* loop_;
  std::shared_ptr<const Generation> gen_;
  std::unique_ptr<os::ListenerSet> listeners_;
  std::vector<Slot> slots_;
  int target_count_ = 0;
  std::unordered_map<pid_t, WorkerRun*> by_pid_;
  std::vector<std::string> master_env_;
  std::uint64_t notify_serial_ = 0;  // the next run's notify socket name
  std::mt19937_64 rng_;
  std::unique_ptr<RollingUpdate> rolling_;
  DrainQueue<Queued> queue_;
  // Runs that left: freed when the next input starts, since the current one may have
  // come from one of their own timers.
  std::vector<std::unique_ptr<WorkerRun>> graveyard_;
  std::unique_ptr<Timer> drain_timer_;  // watches removed slots' accept queues
  bool stopping_ = false;
  bool finished_ = false;
  std::unique_ptr<os::CgroupTree> cgroups_;
  // Cgroups of exited workers whose processes are still dying: removed once empty.
  std::vector<std::unique_ptr<os::WorkerCgroup>> dead_cgroups_;
  // Cgroups of workers that exited, killed once their replacements have started.
  std::vector<std::unique_ptr<os::WorkerCgroup>> exited_cgroups_;
  // Slots that started a process since the queue last ran: each gets a spare cgroup then.
  std::vector<int> spare_wanted_;
  int rollbacks_ = 0;
  struct Subscription {
    Changes kinds;
    std::function<void(Changes)> observer;
  };
  std::vector<Subscription> subscriptions_;
  SlotsDigest published_;  // what the subscribers were last told about
};

// Worker cgroups as `mode` asks (supervisor_tree.cpp): the master's cgroup tree, or none
// (auto without a usable cgroup2 hierarchy, or off); an error only for "on" without one.
// Cgroups left by a master that is gone are killed first, and logged.
// After an in-place upgrade (`own` = adopt) this master's own cgroup is taken over as it is.
[[nodiscard]] Result<std::unique_ptr<os::CgroupTree>> open_worker_cgroups(WorkerCgroups mode, os::OwnCgroup own);

}  // namespace preforkd::daemon
