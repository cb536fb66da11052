// sd_notify from workers: each run has a socket of its own, so a message belongs to the
// run whose socket it arrives on. The sender's pid (SCM_CREDENTIALS) must then be that
// run's worker process, as under systemd's NotifyAccess=main (the default of a
// Type=notify service): a root worker may put any pid in its credentials, and a message
// on another run's socket comes from a process that is not that run's worker.

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace preforkd::daemon {

Result<Ok, NotifySocketError> Supervisor::open_notify_socket(WorkerRun& run) {
  WorkerRun* raw = &run;
  const std::string prefix = fmt::format("preforkd/{}/notify/{}.", ::getpid(), run.slot);
  auto socket = NotifySocket::open(loop_, prefix, notify_serial_,
                                   [this, raw](pid_t sender, const NotifyMessage& m) { on_notify(*raw, sender, m); });
  if (!socket) return socket.failure();
  run.notify = std::move(*socket);
  return Ok{};
}

Status Supervisor::adopt_notify_socket(WorkerRun& run, int fd, std::string address) {
  WorkerRun* raw = &run;
  auto socket = NotifySocket::adopt(loop_, fd, std::move(address),
                                    [this, raw](pid_t sender, const NotifyMessage& m) { on_notify(*raw, sender, m); });
  if (!socket) return Error{fmt::format("worker {}: {}", run.slot, socket.error())};
  run.notify = std::move(*socket);
  return Ok{};
}

void Supervisor::on_notify(WorkerRun& run, pid_t sender, const NotifyMessage& message) {
  if (run.pid <= 0 || sender != run.pid) {
    // Once per process: a worker that forwards its children's messages would repeat it.
    if (run.pid > 0 && !run.notify_refusal_logged) {
      run.notify_refusal_logged = true;
      log_with(log_fields(run), spdlog::level::warn,
               "{}: dropped a notify message from pid {} on its NOTIFY_SOCKET: only the worker process itself "
               "may notify (as NotifyAccess=main)",
               who(run), sender);
    } else {
      log_with(log_fields(run), spdlog::level::debug, "notify: dropped a message from pid {} on the socket of {}",
               sender, who(run));
    }
    return;
  }
  if (message.status) run.notify_status = *message.status;
  if (message.stopping) run.notified_stopping = true;
  if (message.watchdog) arm_watchdog(run);
  if (message.ready) post(run, Event::of(Event::Kind::ready_notified));
  run_queue();
}

void Supervisor::on_shared_notify(pid_t sender, const NotifyMessage& message) {
  WorkerRun* run = find_run(sender);
  // A run with a socket of its own speaks only there.
  if (run == nullptr || run->notify) {
    spdlog::debug("notify: dropped a message from pid {} on the shared socket, which is no worker using it", sender);
    return;
  }
  on_notify(*run, sender, message);
}

}  // namespace preforkd::daemon
