// The actions of step() carried out (signals, timers, counts) and their log lines: one
// per report action, so that every message about a transition comes from here.

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"

#include <preforkd/core/message_text.hpp>
#include <preforkd/os/sys_error.hpp>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace preforkd::daemon {

void Supervisor::send_signal(const WorkerRun& run, pid_t target, int signum) const {
  if (::kill(target, signum) == 0 || errno == ESRCH) return;
  log_with(log_fields(run), spdlog::level::warn, "failed to send {} to {}{}: {}", signal_name(signum), who(run),
           target < 0 ? "'s process group" : "", os::errno_text(errno));
}

std::vector<Event> Supervisor::perform(WorkerRun& run, const Action& action) {
  switch (action.kind) {
    case Action::Kind::spawn:
      return spawn_process(run);
    case Action::Kind::send_stop_signal:
      if (run.pid > 0) {
        remember_tree(run);
        send_signal(run, run.pid, run.gen->worker.stop_signal);
      }
      return {};
    case Action::Kind::send_kill:
      if (run.pid > 0) {
        send_signal(run, -run.pid, SIGKILL);
        send_signal(run, run.pid, SIGKILL);
        kill_tree(run);
      }
      return {};
    case Action::Kind::send_continue:
      if (run.pid > 0) {
        send_signal(run, -run.pid, SIGCONT);
        send_signal(run, run.pid, SIGCONT);
      }
      return {};
    case Action::Kind::arm_timer:
      run.timer->start(action.delay);
      return {};
    case Action::Kind::disarm_timer:
      run.timer->stop();
      return {};
    case Action::Kind::report_ready_timeout:
    case Action::Kind::report_watchdog:
    case Action::Kind::report_stop_timeout:
    case Action::Kind::report_failed:
    case Action::Kind::report_backoff:
    case Action::Kind::report_restart:
    case Action::Kind::report_spawn_failed:
    case Action::Kind::report_spawn_retry:
    case Action::Kind::report_exec_failed:
    case Action::Kind::report_stalled:
      report(run, action);
      return {};
    case Action::Kind::report_crash:
      if (run.slot < static_cast<int>(slots_.size())) {
        Slot& slot = slots_[static_cast<std::size_t>(run.slot)];
        ++slot.crashes;
        if (run.exit) slot.last_exit = run.exit;
      }
      return {};
    case Action::Kind::report_replaced:
      if (run.slot < static_cast<int>(slots_.size())) slots_[static_cast<std::size_t>(run.slot)].count_replacement(action.reason);
      log_with(log_fields(run), spdlog::level::debug, "{}: replaced ({})", who(run), to_string(action.reason));
      return {};
  }
  return {};
}

// The log lines of the lifecycle, one per report action of step().
void Supervisor::report(const WorkerRun& run, const Action& action) const {
  const bool in_slot = run.slot < static_cast<int>(slots_.size());
  const int restarts = in_slot ? slots_[static_cast<std::size_t>(run.slot)].restarts : 0;
  const LogFields fields = log_fields(run);
  const LogFieldsScope scope(fields);
  switch (action.kind) {
    case Action::Kind::report_ready_timeout:
      spdlog::warn("{} was not ready within {}{}; stopping it", who(run), exact_duration(run.gen->worker.ready_timeout),
                   not_ready_hint(run.gen->worker.ready.kind));
      return;
    case Action::Kind::report_watchdog:
      spdlog::warn("{}: watchdog timeout; stopping it", who(run));
      return;
    case Action::Kind::report_stop_timeout: {
      const Duration waited = run.stall_note.empty() ? run.gen->worker.stop_timeout : run.gen->policy.stall_kill_after;
      spdlog::warn("{} did not stop within {}; sending SIGKILL", who(run), exact_duration(waited));
      return;
    }
    case Action::Kind::report_stalled:
      spdlog::warn("{}: stalled: {}; stopping it ({}, then SIGKILL after {})", who(run), run.stall_note,
                   signal_name(run.gen->worker.stop_signal), exact_duration(run.gen->policy.stall_kill_after));
      return;
    case Action::Kind::report_failed:
      spdlog::error("{} failed; not restarting it (preforkctl restart {} tries again)", who(run), run.slot);
      return;
    case Action::Kind::report_backoff:
      spdlog::info("worker {}: restarting in {} (crash {} in a row)", run.slot, format_duration(action.delay),
                   run.life.failures);
      return;
    case Action::Kind::report_restart:
      spdlog::info("worker {}: starting again (restart {})", run.slot, restarts + 1);
      return;
    case Action::Kind::report_spawn_failed:
      spdlog::error("worker {}: cannot start '{}': {}", run.slot, run.gen->executable, run.spawn_error);
      return;
    case Action::Kind::report_spawn_retry:
      spdlog::error("worker {}: cannot start '{}': {}; retrying in {} (not counted as a crash)", run.slot,
                    run.gen->executable, run.spawn_error, format_duration(action.delay));
      return;
    case Action::Kind::report_exec_failed: {
      // Once per attempt, at warn: a binary gone mid-deploy keeps its slot backing off.
      std::string next;
      if (run.life.state == WorkerState::backoff)
        next = fmt::format("; restarting in {} (crash {} in a row)", format_duration(action.delay), run.life.failures);
      else if (run.life.state == WorkerState::starting)
        next = fmt::format("; starting again (restart {})", restarts + 1);
      spdlog::warn("worker {}: {}{}", run.slot, run.gen->exec_failure(run.exec_errno), next);
      return;
    }
    case Action::Kind::spawn:
    case Action::Kind::send_stop_signal:
    case Action::Kind::send_kill:
    case Action::Kind::send_continue:
    case Action::Kind::arm_timer:
    case Action::Kind::disarm_timer:
    case Action::Kind::report_crash:
    case Action::Kind::report_replaced:
      return;
  }
}

}  // namespace preforkd::daemon
