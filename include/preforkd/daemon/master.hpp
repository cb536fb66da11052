#pragma once
// The master process: one libuv loop that turns signals into supervisor calls.

#include <preforkd/core/config.hpp>
#include <preforkd/daemon/signal_watch.hpp>
#include <preforkd/daemon/supervisor.hpp>

#include <memory>
#include <vector>

namespace preforkd::daemon {

class Master {
 public:
  Master(Config config, LaunchPlan plan, os::ListenerSet listeners);
  ~Master();
  // Runs until every worker is gone; returns the process exit code.
  int run();

 private:
  void on_signal(int signum);

  uv_loop_t loop_{};
  std::unique_ptr<Supervisor> supervisor_;
  std::vector<std::unique_ptr<SignalWatch>> signals_;
  int exit_code_ = 0;
};

}  // namespace preforkd::daemon
