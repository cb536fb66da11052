#pragma once
// The adaptive pool's driver ([worker] pool = "dynamic" | "ondemand"): samples each slot
// (is its worker waiting, how many connections queue on its sockets) every few
// milliseconds while workers run, watches the held sockets of slots without a worker for
// a connection (an epoll of the master's own, os/input_watch, as fail-fast does), asks
// core/pool_plan and carries its decision out on the supervisor (pool_start, pool_retire).
// It yields to reload, restart, scale and recycle: while one is in progress it only
// watches, and acts at the next sample after it.

#include <preforkd/core/pool_plan.hpp>
#include <preforkd/daemon/balance/balancer.hpp>
#include <preforkd/daemon/operations/operations.hpp>
#include <preforkd/daemon/supervision/supervisor.hpp>
#include <preforkd/daemon/uv/readable_watch.hpp>
#include <preforkd/daemon/uv/timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace preforkd::daemon {

// The last change the pool made, for status and /metrics.
struct PoolChange {
  std::chrono::system_clock::time_point when;
  int from = 0;
  int to = 0;
  std::string reason;
};

struct PoolView {
  PoolMode mode = PoolMode::fixed;
  int live = 0;      // slots with a worker (starting or running)
  int waiting = 0;   // of them, seen waiting for a connection at the last sample
  int min = 0;
  int max = 0;       // count
  std::optional<PoolChange> last;
  std::uint64_t grown = 0;   // workers started by the pool since start
  std::uint64_t shrunk = 0;  // workers retired by the pool since start
};

class Pool {
 public:
  // Grows and shrinks are submitted to `operations` (OperationKind::pool), which refuses
  // them while another operation runs or waits: the pool looks again at its next sample.
  [[nodiscard]] static Result<std::unique_ptr<Pool>> open(uv_loop_t* loop, Supervisor& supervisor, Balancer& balancer,
                                                          Operations& operations);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  ~Pool();

  // The workers or the config changed (or may have): watch the right sockets, and look
  // again soon. Never acts from inside the supervisor's own callbacks.
  void update();
  [[nodiscard]] PoolView view() const;

 private:
  struct Watch;
  struct Seen {
    pid_t pid = -1;
    bool waited = false;  // seen waiting since the process started
    std::optional<Duration> idle_since;
  };
  Pool(uv_loop_t* loop, Supervisor& supervisor, Balancer& balancer, Operations& operations);
  void tick();
  [[nodiscard]] std::vector<PoolSlot> sample(Clock::time_point now, int& queued_shared);
  // Submits one decision of the plan as an operation: the one way the pool changes the
  // slots; act() carries it out when the operation runs.
  void carry_out(const PoolDecision& d);
  [[nodiscard]] Status act(const PoolDecision& d);
  void sync_watches();
  void on_readable(Watch& w);

  uv_loop_t* loop_;
  Supervisor& supervisor_;
  Balancer& balancer_;
  Operations& operations_;
  std::unique_ptr<Timer> timer_;
  std::vector<std::unique_ptr<Watch>> watches_;
  std::vector<Seen> seen_;  // by slot
  int step_ = 0;
  int waiting_ = 0;
  std::optional<PoolChange> last_;
  std::uint64_t grown_ = 0;
  std::uint64_t shrunk_ = 0;
};

}  // namespace preforkd::daemon
