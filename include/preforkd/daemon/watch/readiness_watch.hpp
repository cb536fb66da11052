#pragma once
// ready = "accepting": while some worker run with that policy is starting, a timer looks
// every few tens of milliseconds whether its tree waits for connections on the slot's own
// sockets (os/accept_wait.hpp) and tells the supervisor, which makes it ready. It runs
// only while such a run is starting; ready_timeout (the run's own timer) still applies.

#include <preforkd/daemon/supervision/supervisor.hpp>
#include <preforkd/daemon/uv/timer.hpp>

#include <memory>

namespace preforkd::daemon {

class ReadinessWatch {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ReadinessWatch>> open(uv_loop_t* loop, Supervisor& supervisor);
  ReadinessWatch(const ReadinessWatch&) = delete;
  ReadinessWatch& operator=(const ReadinessWatch&) = delete;

  // The supervisor's runs changed: starts looking (soon, not from inside the supervisor's
  // own callback) when a run waits to be seen accepting. Cheap when none does.
  void update();

 private:
  explicit ReadinessWatch(Supervisor& supervisor) : supervisor_(supervisor) {}
  void on_timer();
  void report_if_unreadable(const RunView& run);

  Supervisor& supervisor_;
  std::unique_ptr<Timer> timer_;
  bool told_unreadable_ = false;  // the error that /proc cannot be read was logged
};

// Whether `run` is starting and becomes ready by being seen accepting.
[[nodiscard]] bool awaits_accepting(const RunView& run);

}  // namespace preforkd::daemon
