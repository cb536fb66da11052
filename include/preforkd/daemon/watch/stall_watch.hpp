#pragma once
// Hung-worker detection (worker.stall_timeout): a timer looks at every slot's per-slot
// accept queues, and at the worker of a slot whose queue holds connections (is it waiting
// for one? the balancer's /proc probe says), feeds what it sees to core/stall_plan, and
// tells the supervisor about a stalled worker, which replaces it. The looks are rare
// while every queue is empty and frequent (1-10 ms) for a slot whose queue is not.
//
// Only reuseport sockets count: a shared socket's queue belongs to every worker, so it
// says nothing about one of them.

#include <preforkd/core/stall_plan.hpp>
#include <preforkd/daemon/balance/balancer.hpp>
#include <preforkd/daemon/supervision/supervisor.hpp>
#include <preforkd/daemon/uv/timer.hpp>

#include <memory>
#include <vector>

namespace preforkd::daemon {

class StallWatch {
 public:
  [[nodiscard]] static Result<std::unique_ptr<StallWatch>> open(uv_loop_t* loop, Supervisor& supervisor,
                                                                Balancer& balancer);
  StallWatch(const StallWatch&) = delete;
  StallWatch& operator=(const StallWatch&) = delete;

  // Starts looking (the timer then keeps itself going; with stall_timeout = "0s" it only
  // checks the setting now and then, so a reload can turn it on).
  void start();

 private:
  StallWatch(Supervisor& supervisor, Balancer& balancer) : supervisor_(supervisor), balancer_(balancer) {}
  void on_timer();
  // Connections waiting in `slot`'s per-slot accept queues.
  [[nodiscard]] int queued(int slot) const;

  struct Watched {
    pid_t pid = -1;  // the worker the window is about
    StallWindow window;
  };
  Supervisor& supervisor_;
  Balancer& balancer_;
  std::unique_ptr<Timer> timer_;
  std::vector<Watched> slots_;
  Clock::time_point next_full_look_{};
};

}  // namespace preforkd::daemon
