#pragma once
// Recycling (worker.max_memory, worker.max_lifetime): after each usage sample, and when a
// worker's lifetime is up, the recycler shows core/recycle_plan what it sees of every slot
// and has the supervisor carry the orders out as one-slot rolling updates of the current
// generation (Supervisor::recycle): the replacement starts on the slot's sockets beside
// the old worker, becomes ready, then the old one stops gracefully.
//
// A recycle is an operation (daemon/operations/operations.hpp): a reload, restart or scale
// asked for while one runs waits for it (a recycle is short: ready_timeout and stop_timeout
// bound it, and stopping it halfway would cost the capacity it exists to keep), and no
// recycle starts while any other operation runs or waits: it yields, and the next look
// tries again.

#include <preforkd/core/recycle_plan.hpp>
#include <preforkd/daemon/operations/operations.hpp>
#include <preforkd/daemon/supervision/supervisor.hpp>
#include <preforkd/daemon/uv/timer.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace preforkd::daemon {

class Recycler {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Recycler>> open(uv_loop_t* loop, Supervisor& supervisor,
                                                             Operations& operations);
  Recycler(const Recycler&) = delete;
  Recycler& operator=(const Recycler&) = delete;

  // The usage sampler has just read every worker's memory (Master::sample_usage), at `at`.
  void on_sample(Clock::time_point at);
  // For status: seconds until the current worker of `slot` is recycled for its lifetime
  // (-1: no max_lifetime, or not looked at yet), and why the slot was last recycled.
  struct Facts {
    double recycle_in_s = -1;
    std::string last;  // "memory 612 MiB > 512 MiB", "lifetime", or ""
  };
  [[nodiscard]] Facts facts(int slot) const;

 private:
  Recycler(Supervisor& supervisor, Operations& operations)
      : supervisor_(supervisor), operations_(operations), rng_(std::random_device{}()) {}
  // One look at every slot; `sampled_at`: the memory figures read at that time count.
  void look(std::optional<Clock::time_point> sampled_at);
  void start(const std::vector<RecycleOrder>& orders);
  void finished(const std::vector<RecycleOrder>& orders, const Status& result);
  // Wakes up for the next lifetime deadline or retry, if any comes before the next sample.
  void arm(Clock::time_point now);

  Supervisor& supervisor_;
  Operations& operations_;
  std::unique_ptr<Timer> timer_;
  std::vector<RecycleWatch> watches_;
  std::vector<std::string> last_;
  std::mt19937_64 rng_;
};

}  // namespace preforkd::daemon
