// Reload as a transaction: parse and validate the new file, bind new listeners, then
// apply only the difference. Any error before workers move changes nothing.

#include <preforkd/daemon/master/master.hpp>

#include <preforkd/core/config_diff.hpp>
#include <preforkd/core/message_text.hpp>
#include <preforkd/daemon/supervision/generation.hpp>
#include <preforkd/daemon/log/logging.hpp>
#include <preforkd/os/affinity.hpp>
#include <preforkd/os/cpu.hpp>

#include <spdlog/spdlog.h>

namespace preforkd::daemon {

namespace {

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

}  // namespace

void Master::log_reload_result(const Status& result, const std::string& message) {
  if (result) {
    spdlog::info("reload done: {}", message);
  } else {
    spdlog::error("reload failed: {}", result.error());
  }
}

void Master::submit_reload(Done then) {
  operations_->submit({OperationKind::reload, [this](Done complete) { reload(std::move(complete)); },
                       [this, then = std::move(then)](Status st, std::string message) {
                         // Counted for status and metrics however it ends; what is logged
                         // names the generation it went to (or would have).
                         ++reloads_;
                         if (!st) ++reload_failures_;
                         const LogFields fields{.generation = supervisor_->generation().number + (st ? 0 : 1)};
                         const LogFieldsScope scope(fields);
                         log_reload_result(st, message);
                         if (then) then(std::move(st), std::move(message));
                       }});
}

void Master::reload(Done done) {
  SystemLookup cpus_only;  // worker.cpu_affinity is checked against the CPU mask
  cpus_only.usable_cpu_list = os::read_usable_cpu_list;
  ConfigResult loaded = load_config(config_.path, os::read_usable_cpus(), &cpus_only);
  if (!loaded.errors.empty()) {
    std::vector<std::string> lines;
    for (const auto& e : loaded.errors) lines.push_back(e.to_string());
    return done(Error{join(lines, "\n")}, "");
  }
  apply_reload(std::move(*loaded.config), std::move(done));
}

void Master::apply_reload(Config next, Done done) {
  const ConfigDiff diff = diff_configs(config_, next);
  const Generation& running = supervisor_->generation();
  const LogFields fields{.generation = running.number + 1};
  for (const auto& key : diff.needs_restart)
    log_with(fields, spdlog::level::warn, "reload: {} changed; it takes effect when preforkd restarts, ignoring", key);

  // New listeners are bound before anything else moves; a failure changes nothing.
  std::unique_ptr<os::ListenerSet> listeners;
  if (diff.listeners_changed) {
    auto reopened = supervisor_->reopen_listeners(next.listeners);
    if (!reopened) return done(Error{reopened.error()}, "");
    listeners = std::move(*reopened);
  }
  auto gen = make_generation(next, running.number + 1);
  if (!gen) return done(Error{gen.error()}, "");

  // Settings that are not part of a generation apply at once.
  set_log_level(next.daemon.log_level);
  // The daemon section keeps what needs a restart.
  next.daemon.control_socket = config_.daemon.control_socket;
  next.daemon.control_mode = config_.daemon.control_mode;
  next.daemon.control_group = config_.daemon.control_group;
  next.daemon.log_format = config_.daemon.log_format;
  next.daemon.metrics_listen = config_.daemon.metrics_listen;

  systemd_->reloading();
  if (!diff.roll_workers) {
    supervisor_->adopt(std::move(*gen));
    return finish_reload(std::move(next), Ok{}, "no worker needed a restart", done);
  }
  log_with(fields, spdlog::level::info, "reload: replacing workers ({} changed)", join(diff.roll_reasons, ", "));
  // Every live slot: one a scale down is draining goes anyway.
  supervisor_->roll(
      std::move(*gen), {},
      [this, next = std::move(next), done](Status st, const std::string& message) mutable {
        if (!st) st = Error{st.error() + "; rolled back, the previous workers keep serving"};
        finish_reload(std::move(next), std::move(st), message, done);
      },
      std::move(listeners));
}

void Master::finish_reload(Config next, Status rolled, const std::string& message, const Done& done) {
  if (!supervisor_->stopping()) systemd_->ready();
  if (!rolled) return done(std::move(rolled), "");
  const int count = next.worker.count;
  if (next.worker.memory_sample_interval != config_.worker.memory_sample_interval && sampler_)
    sampler_->start(next.worker.memory_sample_interval, next.worker.memory_sample_interval);
  // A smaller buffer drops the oldest lines now; the workers keep running.
  output_log_.drop_slots_from(count);
  output_log_.set_capacity(next.worker.log_buffer);
  config_ = std::move(next);
  std::string text = message;
  if (count != supervisor_->target_count()) {
    if (Status scaled = supervisor_->scale(count); !scaled) return done(Error{"reloaded, but " + scaled.error()}, "");
    text += fmt::format("; scaling to {}", plural(count, "worker"));
  }
  done(Ok{}, fmt::format("reloaded to generation {}: {}", supervisor_->generation().number, text));
}

}  // namespace preforkd::daemon
