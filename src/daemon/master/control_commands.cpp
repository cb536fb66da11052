// What the master answers on its control socket: status, reload, scale, restart, stop.

#include <preforkd/daemon/master/master.hpp>

#include <preforkd/core/message_text.hpp>
#include <preforkd/os/fd_limit.hpp>
#include <preforkd/os/proc_stats.hpp>
#include <preforkd/version.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace preforkd::daemon {

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double unix_time(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::string address_text(const Address& a) { return a.text; }

control::PoolStatus pool_status(const PoolView& v) {
  control::PoolStatus p;
  p.mode = to_string(v.mode);
  p.live = v.live;
  p.waiting = v.waiting;
  p.min = v.min;
  p.max = v.max;
  p.grown_total = v.grown;
  p.shrunk_total = v.shrunk;
  if (v.last) {
    const auto ago = std::chrono::system_clock::now() - v.last->when;
    p.last_change = control::PoolChangeStatus{unix_time(v.last->when), std::chrono::duration<double>(ago).count(),
                                              v.last->from, v.last->to, v.last->reason};
  }
  return p;
}

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
      log_with({.generation = supervisor_->generation().number + 1}, spdlog::level::info,
               "reload requested on the control socket");
      submit_reload(reply_when_done);
      return;
    case control::Request::Command::scale:
      operations_->submit({OperationKind::scale,
                           [this, target = request.scale](Done complete) { scale(target, std::move(complete)); },
                           [this, respond](Status st, const std::string& message) {
                             if (!st) return respond(control::make_error(st.error()));
                             respond(control::make_ok({{"message", message}, {"workers", supervisor_->target_count()}}));
                           }});
      return;
    case control::Request::Command::restart: {
      std::vector<int> slots = request.restart.all ? std::vector<int>{} : request.restart.slots;
      spdlog::info("restart of {} requested",
                   slots.empty() ? std::string("all workers") : plural(static_cast<std::int64_t>(slots.size()), "worker"));
      operations_->submit({OperationKind::restart,
                           [this, slots = std::move(slots)](Done complete) {
                             supervisor_->roll(supervisor_->generation_ptr(), slots, std::move(complete));
                           },
                           reply_when_done});
      return;
    }
    case control::Request::Command::upgrade: {
      spdlog::info("upgrade requested on the control socket");
      // Only ever started at once (core/operation_queue.hpp): this connection is the one handled.
      operations_->submit({OperationKind::upgrade,
                           [this, fd = control_->handling_fd()](Done complete) {
                             // Success does not return: the new image answers on this same connection.
                             Status st = upgrade(fd);
                             complete(st ? Status(Error{"upgrade failed"}) : std::move(st), "");
                           },
                           [respond](Status st, const std::string&) {
                             spdlog::error("upgrade failed: {}", st ? std::string("?") : st.error());
                             respond(control::make_error(st ? std::string("upgrade failed") : st.error()));
                           }});
      return;
    }
    case control::Request::Command::logs: {
      nlohmann::json reply = logs_reply(request.logs);
      // Following: the reply goes first, then each new line on the same connection.
      if (reply.value("ok", false) && request.logs.follow) {
        if (Status st = output_log_.follow(request.logs.slots, control_->follow_handling()); !st)
          return respond(control::make_error(st.error()));
      }
      respond(std::move(reply));
      return;
    }
    case control::Request::Command::stop:
      respond(control::make_ok({{"message", "stopping"}}));
      spdlog::info("stop requested on the control socket");
      systemd_->stopping();
      stop(StopMode::graceful);
      return;
  }
  respond(control::make_error("unknown command"));
}

nlohmann::json Master::logs_reply(const control::LogsTarget& target) {
  if (config_.daemon.worker_output == WorkerOutput::inherit)
    return control::make_error(R"(logs: worker_output = "inherit": the workers write to preforkd's own stdout and )"
                               R"(stderr, so the master reads and keeps none of it)");
  if (output_log_.capacity() == 0)
    return control::make_error(R"(logs: worker output is not kept (worker.log_buffer = "0"))");
  const int slots = supervisor_->slot_count();
  for (const int slot : target.slots) {
    if (slot >= slots)
      return control::make_error(fmt::format("logs: no slot {}; the slots are 0 to {}", slot, slots - 1));
  }
  nlohmann::json lines = nlohmann::json::array();
  for (const OutputLine& line : output_log_.latest(target.slots, target.lines))
    lines.push_back(control::log_line_json(line));
  return control::make_ok({{"lines", std::move(lines)}});
}

void Master::scale(control::ScaleTarget to, Done done) {
  const int from = supervisor_->target_count();
  auto target = to.resolve(from);
  if (!target) return done(Error{target.error()}, "");
  if (auto limit = os::current_fd_limit(); limit && *target > from) {
    if (Status fits = os::check_fd_limit(config_, *target, *limit); !fits)
      return done(Error{"cannot scale to " + std::to_string(*target) + ": " + fits.error()}, "");
  }
  // The output kept for `logs` stays within its bound for every slot (core/output_ring.hpp).
  if (config_.worker.log_buffer * static_cast<std::uint64_t>(*target) > max_log_buffer_total)
    return done(Error{fmt::format("cannot scale to {}: worker.log_buffer of {} KiB per slot would pass the {} MiB kept "
                                  "for worker output in all",
                                  *target, config_.worker.log_buffer >> 10, max_log_buffer_total >> 20)},
                "");
  if (Status st = supervisor_->scale(*target); !st) return done(std::move(st), "");
  output_log_.drop_slots_from(*target);
  // An adaptive pool: the count is its most workers; the pool decides how many run.
  const PoolMode pool = supervisor_->generation().worker.pool.mode;
  done(Ok{}, pool == PoolMode::fixed
                 ? fmt::format("scaled from {} to {}", from, plural(*target, "worker"))
                 : fmt::format("pool = \"{}\": count (the most workers) set from {} to {}; the pool starts them as "
                               "the load needs",
                               to_string(pool), from, *target));
}

void Master::sample_usage() {
  const long hz = os::ticks_per_second();
  const auto now = Clock::now();
  for (const SlotView& slot : supervisor_->view()) {
    if (!slot.current || slot.current->pid <= 0) continue;
    Usage u = slot.current->usage;
    // The whole tree: its cgroup, or the worker and its descendants from /proc.
    const os::TreeUsage tree = supervisor_->sample_tree(slot.slot);
    if (tree.processes == 0) continue;  // gone meanwhile
    u.rss_bytes = tree.rss;
    u.pss_bytes = tree.pss;
    u.uss_bytes = tree.uss;
    u.processes = tree.processes;
    u.memory_sampled = now;
    if (u.cpu_sampled != Clock::time_point{}) u.cpu_percent = os::cpu_percent(u.cpu_ticks, tree.cpu_ticks, hz, now - u.cpu_sampled);
    u.cpu_ticks = tree.cpu_ticks;
    u.cpu_sampled = now;
    supervisor_->submit(UsageSampled{slot.slot, u});
  }
  if (recycler_) recycler_->on_sample(now);
}

control::StatusSnapshot Master::status() {
  control::StatusSnapshot s;
  const Generation& gen = supervisor_->generation();
  s.master.pid = static_cast<int>(::getpid());
  s.master.version = version_;
  s.master.config = config_.path;
  s.master.generation = gen.number;
  s.master.uptime_s = seconds_since(started_);
  s.master.start_unix_time = unix_time(started_wall_);
  s.master.workers_ready = supervisor_->ready_count();
  s.master.workers_total = supervisor_->target_count();
  s.master.notify_status = systemd_->last_status();
  if (auto rss = os::read_rss_bytes(::getpid())) s.master.rss_bytes = *rss;
  s.master.reloads = reloads_;
  s.master.reload_failures = reload_failures_;
  s.master.rollbacks = supervisor_->rollbacks();
  if (pool_) s.pool = pool_status(pool_->view());
  const auto wall_now = std::chrono::system_clock::now();
  for (const SlotView& slot : supervisor_->view()) {
    const std::optional<RunView>& run = slot.current;
    control::WorkerStatus w;
    w.slot = slot.slot;
    w.restarts = slot.restarts;
    w.crashes = slot.crashes;
    w.replacements = slot.replacements;
    for (const auto& [why, n] : slot.replaced_for) w.replaced_for[to_string(why)] = n;
    if (run) {
      w.pid = run->pid;
      w.state = slot.removing && run->state == WorkerState::ready ? "stopping" : to_string(run->state);
      w.generation = run->generation;
      w.notify_status = run->notify_status;
      if (run->pid > 0) {
        w.uptime_s = seconds_since(run->started);
        w.start_unix_time = unix_time(run->started_wall);
        // Sampled with the CPU time (sample_usage): smaps_rollup is read once per sample,
        // never per status request; a worker not sampled yet is read now.
        Usage u = run->usage;
        if (u.memory_sampled == Clock::time_point{}) {
          const os::TreeUsage tree = supervisor_->sample_tree(w.slot);
          u.rss_bytes = tree.rss;
          u.pss_bytes = tree.pss;
          u.uss_bytes = tree.uss;
          u.processes = tree.processes;
        }
        w.rss_bytes = u.rss_bytes;
        w.pss_bytes = u.pss_bytes;
        w.uss_bytes = u.uss_bytes;
        w.processes = u.processes;
        if (!run->cgroup.empty()) w.cgroup = run->cgroup;
        w.cpu_percent = run->usage.cpu_percent;
        w.cpu_s = static_cast<double>(run->usage.cpu_ticks) / static_cast<double>(os::ticks_per_second());
        const SlotSample seen = balancer_->last_seen(w.slot);
        w.activity = to_string(seen.activity);
        w.queued = seen.queued;
        if (run->cpu >= 0) w.cpus = std::to_string(run->cpu);
      }
    }
    if (recycler_) {
      const Recycler::Facts recycle = recycler_->facts(w.slot);
      w.recycle_in_s = recycle.recycle_in_s;
      w.recycled = recycle.last;
    }
    if (slot.last_exit) {
      control::LastExitInfo e;
      e.text = describe(slot.last_exit->status);
      e.code = slot.last_exit->status.kind == ExitStatus::Kind::exited ? slot.last_exit->status.code : -1;
      e.signal = slot.last_exit->status.signal;
      e.unix_time = std::chrono::duration<double>(slot.last_exit->when.time_since_epoch()).count();
      e.ago_s = std::chrono::duration<double>(wall_now - slot.last_exit->when).count();
      e.cause = slot.last_exit->cause;
      if (!e.cause.empty()) e.text += " (" + e.cause + ")";
      w.last_exit = e;
    }
    s.workers.push_back(std::move(w));
  }
  s.memory = control::summarize_memory(s.workers);
  if (auto own = os::read_smaps_rollup(::getpid())) {
    s.memory.master_rss_bytes = own->rss;
    s.memory.master_pss_bytes = own->pss;
    s.memory.master_uss_bytes = own->uss;
  }
  const os::ListenerSet& listeners = supervisor_->listeners();
  for (std::size_t l = 0; l < listeners.configs().size(); ++l) {
    const ListenConfig& c = listeners.configs()[l];
    control::ListenerStatus ls;
    ls.name = c.name;
    ls.address = address_text(c.address);
    ls.mode = to_string(c.mode);
    ls.defer_accept_s = defer_accept_seconds(c);
    ls.fastopen = c.fastopen;
    ls.keep_alive = c.keep_alive;
    const auto seconds = [](Duration d) {
      return static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
    };
    ls.keep_alive_time_s = seconds(c.keep_alive_time);
    ls.keep_alive_interval_s = seconds(c.keep_alive_interval);
    ls.keep_alive_probes = c.keep_alive_probes;
    ls.receive_buffer = c.receive_buffer;
    ls.send_buffer = c.send_buffer;
    ls.no_delay = c.no_delay;
    ls.free_bind = c.free_bind;
    if (c.address.family == AddressFamily::ipv6) ls.bind_ipv6_only = to_string(c.bind_ipv6_only);
    ls.bind_to_device = c.bind_to_device;
    ls.non_blocking = c.non_blocking;
    const bool per_slot = c.mode == ListenMode::reuseport && c.address.family != AddressFamily::unix_path;
    if (per_slot) ls.balance = to_string(c.balance);
    ls.balanced_by = listeners.balanced_by(l);
    ls.ebpf_error = listeners.ebpf_error(l);
    if (auto counts = listeners.steer_counts(l))
      ls.steered = {{"waiting", counts->to_waiting}, {"busy", counts->to_busy}, {"hash", counts->to_hash}};
    const int sockets = per_slot ? listeners.slot_count() : 1;
    for (int slot = 0; slot < sockets; ++slot) ls.queue_depth.push_back(listeners.accept_queue_depth(l, slot));
    if (fail_fast_) {
      const FailFast::Facts facts = fail_fast_->facts(c.name);
      ls.refusing = facts.refusing;
      ls.refused_total = facts.refused_total;
    }
    s.listeners.push_back(std::move(ls));
  }
  return s;
}

}  // namespace preforkd::daemon
