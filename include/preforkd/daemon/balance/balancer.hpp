#pragma once
// Balanced accept (balance = "load"): a timer samples every slot's worker (waiting for a
// connection or busy, from /proc) and accept-queue depth, asks plan_balance() which live
// slots should get new connections, and re-steers the listeners' reuseport groups when
// that set changes. Sampling is fast while any worker is busy or a queue is non-empty,
// slow while all wait on empty queues. The supervisor decides which slots are live; the
// balancer only narrows that set, so dead, backing-off and removed slots stay excluded.

#include <preforkd/core/balance_plan.hpp>
#include <preforkd/daemon/supervision/supervisor.hpp>
#include <preforkd/daemon/uv/timer.hpp>
#include <preforkd/os/worker_activity.hpp>

#include <map>
#include <string>
#include <vector>

namespace preforkd::daemon {

// How listeners with balance = "load" will steer, from preforkd.ebpf: the kernel program
// where it loads ("auto": logged when it does not), the sampler ("off"), or an error when
// "on" and it does not load. Loads the program once, when some listener needs it or "on".
[[nodiscard]] Result<os::LoadSteering> choose_load_steering(EbpfUse use, const std::vector<ListenConfig>& listeners);

class Balancer {
 public:
  Balancer(uv_loop_t* loop, Supervisor& supervisor, BalanceTuning tuning = {});
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;

  // The supervisor's live set changed (or may have): sample and steer at once.
  void on_live_change(const std::vector<int>& live);
  // What the last sample saw of `slot` (for status); samples first if that is old.
  [[nodiscard]] SlotSample last_seen(int slot);
  // Whether `slot`'s worker (or its replacement during a rolling update) waits for a
  // connection now, read with the balancer's probe (for the stall watch).
  [[nodiscard]] Activity activity_of(int slot);

 private:
  void on_timer();
  void sample();
  void apply();
  // Lists the process trees again when that is older than relist_every.
  void relist_if_old(Clock::time_point now);
  // Steers the listeners and logs what failed, once per listener whose eBPF program
  // fell back to the sampler.
  void steer(const std::vector<int>& balanced);
  // The socket inodes of `slot`, cached until the listener set or the slot count changes.
  const std::vector<ino_t>& inodes_for(int slot);

  Supervisor& supervisor_;
  BalanceTuning tuning_;
  std::unique_ptr<Timer> timer_;  // null if libuv refused one (logged)
  os::ActivityProbe probe_;
  std::vector<int> live_;
  std::vector<int> steered_;  // what the last plan chose
  std::vector<SlotSample> samples_;  // one per slot, by index
  std::vector<std::vector<ino_t>> inodes_;  // each slot's socket inodes, cached
  const os::ListenerSet* inodes_of_ = nullptr;
  Clock::time_point sampled_{};
  Clock::time_point trees_listed_{};
  std::map<std::string, std::string> ebpf_errors_;  // listener -> the fallback last logged
};

}  // namespace preforkd::daemon
