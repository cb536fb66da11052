// The master's in-place upgrade: refuse when it cannot be done cleanly, run the new binary
// in check mode, hand the state on in a memfd and exec; in the new image, answer the
// client that asked and tell systemd it is ready again.

#include <preforkd/daemon/master/master.hpp>

#include <preforkd/core/config_diff.hpp>
#include <preforkd/core/message_text.hpp>
#include <preforkd/daemon/upgrade/upgrade.hpp>
#include <preforkd/os/cpu.hpp>
#include <preforkd/os/image_exec.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

namespace preforkd::daemon {

namespace {

// The new binary's check run: reading a config and looking up users takes milliseconds.
constexpr Duration preflight_deadline = std::chrono::seconds(10);

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

void Master::set_program(std::string path, std::string version) {
  self_path_ = std::move(path);
  version_ = std::move(version);
}

void Master::resume_from(MasterState state) {
  upgrades_ = state.upgrades;
  started_ = Clock::now() - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(state.uptime_s));
  started_wall_ = std::chrono::system_clock::now() -
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(state.uptime_s));
  resume_ = std::move(state);
}

Result<MasterState> Master::handoff_state(int reply_fd) {
  MasterState s;
  s.version = version_;
  s.config_path = config_.path;
  s.generation = supervisor_->generation().number;
  s.target_count = supervisor_->target_count();
  s.uptime_s = std::chrono::duration<double>(Clock::now() - started_).count();
  s.upgrades = upgrades_ + 1;
  const auto control = control_->socket();
  s.control_fd = control.fd;
  s.control_dev = control.dev;
  s.control_ino = control.ino;
  if (shared_notify_) {
    s.notify_fd = shared_notify_->fd();
    s.notify_address = shared_notify_->address();
  }
  s.listeners = supervisor_->listeners().handoff();
  s.slots = supervisor_->handoff();
  if (reply_fd >= 0) s.reply = UpgradeReply{reply_fd, version_};
  return s;
}

Status Master::upgrade(int reply_fd) {
  if (const std::string why = supervisor_->handoff_blocker(); !why.empty()) return Error{"busy: " + why};
  if (self_path_.empty()) return Error{"the path of the running preforkd is unknown (/proc/self/exe was unreadable at start)"};

  // The new image reads the config file again: it must still say what is running, or the
  // workers it takes over would not match it.
  ConfigResult loaded = load_config(config_.path, os::read_usable_cpus());
  if (!loaded.errors.empty())
    return Error{"'" + config_.path + "' has errors now, and the new image would read it: " + loaded.errors.front().to_string()};
  const ConfigDiff diff = diff_configs(config_, *loaded.config);
  std::vector<std::string> changed = diff.roll_reasons;
  for (const auto& key : diff.needs_restart) changed.push_back(key);
  if (diff.listeners_changed) changed.emplace_back("[[listen]]");
  if (diff.policy_changed) changed.emplace_back("worker policy");
  if (!changed.empty())
    return Error{"'" + config_.path + "' has changed since it was loaded (" + join(changed) +
                 "); run preforkctl reload first, or undo the change"};

  // Preflight: the new binary must accept the config, read our state format, and decode
  // and check the state as it is now (the one handed over is taken again after it, with
  // the timers' remaining times as they are then).
  auto now = handoff_state(reply_fd);
  if (!now) return Error{now.error()};
  auto preflight = run_preflight(self_path_, config_.path, *now, preflight_deadline);
  if (!preflight) return Error{preflight.error()};
  spdlog::info("upgrade: '{}' (version {}) passed its check; handing over", self_path_,
               preflight->version.empty() ? "unknown" : preflight->version);

  auto state = handoff_state(reply_fd);
  if (!state) return Error{state.error()};
  os::ExecAttempt attempt;
  // Signals first: from here on a SIGCHLD or SIGTERM waits for the new image.
  attempt.block_signals(&state->blocked_signals);
  // Not close-on-exec: this one fd is meant to survive the exec (closed here if it fails).
  auto memfd = os::text_memfd("preforkd-upgrade-state", encode_master_state(*state), os::OnExec::keep);
  if (!memfd) return Error{memfd.error()};
  std::vector<int> keep = {state->control_fd, reply_fd, memfd->get()};
  if (state->notify_fd >= 0) keep.push_back(state->notify_fd);
  for (const auto& l : state->listeners) keep.insert(keep.end(), l.fds.begin(), l.fds.end());
  for (const auto& slot : state->slots) {
    keep.push_back(slot.run.stdout_fd);
    keep.push_back(slot.run.stderr_fd);
    if (slot.run.notify_fd >= 0) keep.push_back(slot.run.notify_fd);
  }
  for (int fd : keep)
    if (Status st = attempt.keep(fd); !st) return Error{"upgrade: " + st.error()};

  systemd_->reloading();
  spdlog::info("upgrade: exec '{}' (pid {} stays, {} kept)", self_path_, ::getpid(),
               plural(static_cast<std::int64_t>(state->slots.size()), "worker"));
  spdlog::default_logger()->flush();
  const Error failed =
      attempt.exec(self_path_, {self_path_, "--config", config_.path, resume_option, std::to_string(memfd->get())});
  // Still the old image: everything is as it was (ExecAttempt undoes the rest, the memfd closes).
  attempt.undo();
  systemd_->ready();
  return Error{failed.message + "; the running preforkd carries on"};
}

void Master::finish_resume() {
  const MasterState& s = *resume_;
  const std::string message =
      fmt::format("upgraded from {} to {} (pid {}, {} workers kept, generation {})", s.version, version_, ::getpid(),
                  s.slots.size(), s.generation);
  spdlog::info("{}", message);
  if (s.reply) {
    const nlohmann::json reply = control::make_ok(
        {{"message", message}, {"old_version", s.reply->old_version}, {"new_version", version_}, {"pid", ::getpid()}});
    answer_upgrade_client(s.reply->fd, reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  systemd_->status(summary());
  systemd_->ready();
  resume_->reply.reset();
}

}  // namespace preforkd::daemon
