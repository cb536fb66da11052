#include <preforkd/daemon/master.hpp>

#include <spdlog/spdlog.h>

#include <csignal>

namespace preforkd::daemon {

Master::Master(Config config, LaunchPlan plan, os::ListenerSet listeners) {
  uv_loop_init(&loop_);
  supervisor_ = std::make_unique<Supervisor>(&loop_, std::move(config), std::move(plan), std::move(listeners));
  supervisor_->on_finished = [this] { uv_stop(&loop_); };
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGCHLD})
    signals_.push_back(std::make_unique<SignalWatch>(&loop_, sig, [this](int s) { on_signal(s); }));
}

Master::~Master() {
  signals_.clear();
  supervisor_.reset();
  // Let libuv run the close callbacks of every handle, then free the loop.
  uv_run(&loop_, UV_RUN_NOWAIT);
  uv_walk(&loop_, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void Master::on_signal(int signum) {
  switch (signum) {
    case SIGCHLD:
      supervisor_->reap_children();
      return;
    case SIGTERM:
    case SIGINT:
      spdlog::info("received {}, stopping gracefully", signum == SIGTERM ? "SIGTERM" : "SIGINT");
      supervisor_->stop(StopMode::graceful);
      return;
    case SIGQUIT:
      spdlog::info("received SIGQUIT, stopping now");
      supervisor_->stop(StopMode::fast);
      return;
    case SIGHUP:
      spdlog::warn("received SIGHUP: reload is not available yet, ignoring");
      return;
    case SIGTTIN:
    case SIGTTOU:
      spdlog::warn("received {}: scaling is not available yet, ignoring", signum == SIGTTIN ? "SIGTTIN" : "SIGTTOU");
      return;
    default:
      return;
  }
}

int Master::run() {
  supervisor_->start();
  uv_run(&loop_, UV_RUN_DEFAULT);
  spdlog::info("all workers stopped, exiting");
  return exit_code_;
}

}  // namespace preforkd::daemon
