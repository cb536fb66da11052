// What the master answers on its control socket: status, reload, scale, restart, stop.

#include <preforkd/daemon/master.hpp>

#include <preforkd/os/fd_limit.hpp>
#include <preforkd/os/proc_stats.hpp>
#include <preforkd/version.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace preforkd::daemon {

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string address_text(const Address& a) { return a.text; }

}  // namespace

void Master::handle(const control::Request& request, ControlServer::Responder respond) {
  // Replies for operations that finish later; the responder drops them if the client left.
  auto reply_when_done = [respond](Status st, const std::string& message) {
    respond(st ? control::make_ok({{"message", message}}) : control::make_error(st.error()));
  };
  switch (request.command) {
    case control::Request::Command::status:
      respond(control::make_ok(nlohmann::json(status())));
      return;
    case control::Request::Command::reload:
      spdlog::info("reload requested on the control socket");
      reload([reply_when_done](Status st, const std::string& message) {
        log_reload_result(st, message);
        reply_when_done(std::move(st), message);
      });
      return;
    case control::Request::Command::scale: {
      auto target = request.scale.resolve(supervisor_->target_count());
      if (!target) return respond(control::make_error(target.error()));
      const int from = supervisor_->target_count();
      if (auto limit = os::current_fd_limit(); limit && *target > from) {
        if (Status fits = os::check_fd_limit(config_, *target, *limit); !fits)
          return respond(control::make_error("cannot scale to " + std::to_string(*target) + ": " + fits.error()));
      }
      if (Status st = supervisor_->scale(*target); !st) return respond(control::make_error(st.error()));
      respond(control::make_ok({{"message", fmt::format("scaled from {} to {} workers", from, *target)},
                                {"workers", *target}}));
      return;
    }
    case control::Request::Command::restart:
      restart(request.restart.all ? std::vector<int>{} : request.restart.slots, reply_when_done);
      return;
    case control::Request::Command::upgrade: {
      spdlog::info("upgrade requested on the control socket");
      // Success does not return: the new image answers on this same connection.
      Status st = upgrade(control_->handling_fd());
      spdlog::error("upgrade failed: {}", st ? std::string("?") : st.error());
      respond(control::make_error(st ? std::string("upgrade failed") : st.error()));
      return;
    }
    case control::Request::Command::stop:
      respond(control::make_ok({{"message", "stopping"}}));
      spdlog::info("stop requested on the control socket");
      systemd_->stopping();
      supervisor_->stop(StopMode::graceful);
      return;
  }
  respond(control::make_error("unknown command"));
}

void Master::restart(std::vector<int> slots, Done done) {
  if (reloading_) return done(Error{"busy: a reload is in progress"}, "");
  spdlog::info("restart of {} requested", slots.empty() ? std::string("all workers") : fmt::format("{} workers", slots.size()));
  supervisor_->roll(supervisor_->generation_ptr(), std::move(slots), std::move(done));
}

void Master::sample_usage() {
  const long hz = os::ticks_per_second();
  const auto now = Clock::now();
  const auto& slots = supervisor_->slots();
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const WorkerRun* run = slots[i].current.get();
    if (run == nullptr || run->pid <= 0) continue;
    Usage u = run->usage;
    if (auto rss = os::read_rss_bytes(run->pid)) u.rss_bytes = *rss;
    if (auto ticks = os::read_cpu_ticks(run->pid)) {
      if (u.cpu_sampled != Clock::time_point{}) u.cpu_percent = os::cpu_percent(u.cpu_ticks, *ticks, hz, now - u.cpu_sampled);
      u.cpu_ticks = *ticks;
      u.cpu_sampled = now;
    }
    supervisor_->record_usage(static_cast<int>(i), u);
  }
}

control::StatusSnapshot Master::status() {
  control::StatusSnapshot s;
  const Generation& gen = supervisor_->generation();
  s.master.pid = static_cast<int>(::getpid());
  s.master.version = version_;
  s.master.config = config_.path;
  s.master.generation = gen.number;
  s.master.uptime_s = seconds_since(started_);
  s.master.workers_ready = supervisor_->ready_count();
  s.master.workers_total = supervisor_->target_count();
  s.master.notify_status = systemd_->last_status();
  const auto wall_now = std::chrono::system_clock::now();
  for (std::size_t i = 0; i < supervisor_->slots().size(); ++i) {
    const Slot& slot = supervisor_->slots()[i];
    const WorkerRun* run = slot.current.get();
    control::WorkerStatus w;
    w.slot = static_cast<int>(i);
    w.restarts = slot.restarts;
    if (run != nullptr) {
      w.pid = run->pid;
      w.state = slot.removing && run->life.state == WorkerState::ready ? "stopping" : to_string(run->life.state);
      w.generation = run->gen->number;
      w.notify_status = run->notify_status;
      if (run->pid > 0) {
        w.uptime_s = seconds_since(run->started);
        // Sampled with the CPU time (sample_usage); a worker not sampled yet is read now.
        w.rss_bytes = run->usage.rss_bytes;
        if (w.rss_bytes == 0) {
          if (auto rss = os::read_rss_bytes(run->pid)) w.rss_bytes = *rss;
        }
        w.cpu_percent = run->usage.cpu_percent;
        const SlotSample seen = balancer_->last_seen(w.slot);
        w.activity = to_string(seen.activity);
        w.queued = seen.queued;
      }
    }
    if (slot.last_exit) {
      control::LastExitInfo e;
      e.text = describe(slot.last_exit->status);
      e.code = slot.last_exit->status.kind == ExitStatus::Kind::exited ? slot.last_exit->status.code : -1;
      e.signal = slot.last_exit->status.signal;
      e.unix_time = std::chrono::duration<double>(slot.last_exit->when.time_since_epoch()).count();
      e.ago_s = std::chrono::duration<double>(wall_now - slot.last_exit->when).count();
      w.last_exit = e;
    }
    s.workers.push_back(std::move(w));
  }
  const os::ListenerSet& listeners = supervisor_->listeners();
  for (std::size_t l = 0; l < listeners.configs().size(); ++l) {
    const ListenConfig& c = listeners.configs()[l];
    control::ListenerStatus ls;
    ls.name = c.name;
    ls.address = address_text(c.address);
    ls.mode = to_string(c.mode);
    const bool per_slot = c.mode == ListenMode::reuseport && c.address.family != AddressFamily::unix_path;
    if (per_slot) ls.balance = to_string(c.balance);
    const int sockets = per_slot ? listeners.slot_count() : 1;
    for (int slot = 0; slot < sockets; ++slot) ls.queue_depth.push_back(listeners.accept_queue_depth(l, slot));
    s.listeners.push_back(std::move(ls));
  }
  return s;
}

}  // namespace preforkd::daemon
