// Balanced accept: samples workers and accept queues, steers to the waiting workers.

#include <preforkd/daemon/balance/balancer.hpp>

#include <preforkd/core/units.hpp>
#include <preforkd/daemon/log/logging.hpp>

#include <algorithm>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

namespace preforkd::daemon {
namespace {

// How often the process trees (children, threads) are listed again: a worker may fork
// or start threads after it started.
constexpr auto relist_every = std::chrono::seconds(2);
// Status reads a sample at most this old; older, it samples first.
constexpr auto status_fresh = std::chrono::milliseconds(100);

// Waiting when any process of the slot (the current run, or its replacement during a
// rolling update) waits; busy when one was seen and none waits.
Activity combine(Activity a, Activity b) {
  if (a == Activity::waiting || b == Activity::waiting) return Activity::waiting;
  if (a == Activity::busy || b == Activity::busy) return Activity::busy;
  return Activity::unknown;
}

// The processes of the slot's current run and of its replacement during a rolling update.
std::vector<pid_t> worker_pids(const SlotView& slot) {
  std::vector<pid_t> pids;
  for (const std::optional<RunView>* run : {&slot.current, &slot.candidate})
    if (*run && (*run)->pid > 0) pids.push_back((*run)->pid);
  return pids;
}

}  // namespace

Result<os::LoadSteering> choose_load_steering(EbpfUse use, const std::vector<ListenConfig>& listeners) {
  const bool needed = std::ranges::any_of(listeners, [](const ListenConfig& l) {
    return l.mode == ListenMode::reuseport && l.balance == ListenBalance::load &&
           l.address.family != AddressFamily::unix_path;
  });
  if (use == EbpfUse::off) {
    if (needed) spdlog::info("balance = \"load\": the master samples the workers (preforkd.ebpf = \"off\")");
    return os::LoadSteering::sampler;
  }
  // A listener that a reload adds later loads the program then (falling back if it fails).
  // "on" is checked at once either way, as --check does.
  if (!needed && use == EbpfUse::automatic) return os::LoadSteering::ebpf;
  if (auto why = os::reuseport_steering_unavailable()) {
    if (use == EbpfUse::on) return Error{"preforkd.ebpf = \"on\": " + *why};
    spdlog::info("balance = \"load\": the master samples the workers ({})", *why);
    return os::LoadSteering::sampler;
  }
  if (needed) spdlog::info("balance = \"load\": an eBPF program in the kernel picks the worker for each connection");
  return os::LoadSteering::ebpf;
}

Balancer::Balancer(uv_loop_t* loop, Supervisor& supervisor, BalanceTuning tuning)
    : supervisor_(supervisor), tuning_(tuning) {
  auto timer = Timer::open(loop, [this] { on_timer(); });
  if (timer) {
    timer_ = std::move(*timer);
  } else {
    spdlog::error("the balancer cannot sample the workers: {}", timer.error());
  }
}

void Balancer::on_live_change(const std::vector<int>& live) {
  live_ = live;
  sample();
  apply();
}

void Balancer::on_timer() {
  sample();
  apply();
}

void Balancer::relist_if_old(Clock::time_point now) {
  if (now - trees_listed_ < relist_every) return;
  probe_.refresh();
  trees_listed_ = now;
  inodes_.clear();
}

const std::vector<ino_t>& Balancer::inodes_for(int slot) {
  const os::ListenerSet& listeners = supervisor_.listeners();
  const auto slots = static_cast<std::size_t>(supervisor_.slot_count());
  if (static_cast<std::size_t>(slot) >= inodes_.size() || inodes_of_ != &listeners || inodes_.size() != slots) {
    // The sockets of a slot change only with the listener set or the slot count.
    inodes_of_ = &listeners;
    inodes_.clear();
    for (std::size_t j = 0; j < slots; ++j) inodes_.push_back(listeners.socket_inodes_for_slot(static_cast<int>(j)));
  }
  return inodes_[static_cast<std::size_t>(slot)];
}

void Balancer::sample() {
  const auto now = Clock::now();
  relist_if_old(now);
  const std::vector<SlotView> slots = supervisor_.view();
  const os::ListenerSet& listeners = supervisor_.listeners();
  samples_.assign(slots.size(), SlotSample{});
  std::vector<pid_t> workers;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const int slot = static_cast<int>(i);
    SlotSample& s = samples_[i];
    s.slot = slot;
    s.queued = listeners.balanced_queue_depth(slot);
    const auto& inodes = inodes_for(slot);
    for (const pid_t pid : worker_pids(slots[i])) {
      workers.push_back(pid);
      s.activity = combine(s.activity, probe_.sample(pid, inodes));
    }
  }
  probe_.forget_others(workers);
  sampled_ = now;
}

Activity Balancer::activity_of(int slot) {
  const std::optional<SlotView> view = supervisor_.view_of(slot);
  if (!view) return Activity::unknown;
  relist_if_old(Clock::now());
  const auto& inodes = inodes_for(slot);
  Activity seen = Activity::unknown;
  for (const pid_t pid : worker_pids(*view)) seen = combine(seen, probe_.sample(pid, inodes));
  return seen;
}

void Balancer::apply() {
  if (!supervisor_.listeners().balances_on_load()) {
    // Only hash listeners and load listeners balanced in the kernel: the live set, and
    // nothing to sample for.
    if (timer_) timer_->stop();
    steer(live_);
    // A listener whose kernel program just failed is the sampler's from now on.
    if (timer_ && supervisor_.listeners().balances_on_load()) timer_->start(tuning_.fast);
    return;
  }
  BalancePlan plan = plan_balance(live_, samples_, steered_, tuning_, supervisor_.packs_load());
  steer(plan.steer_to);
  if (plan.steer_to != steered_ && spdlog::should_log(spdlog::level::trace)) {
    std::string seen;
    for (const SlotSample& x : samples_) seen += fmt::format(" {}:{}/{}", x.slot, to_string(x.activity), x.queued);
    spdlog::trace("balance: steering to [{}];{}", fmt::join(plan.steer_to, ","), seen);
  }
  steered_ = std::move(plan.steer_to);
  if (timer_) timer_->start(plan.next_sample);
}

void Balancer::steer(const std::vector<int>& balanced) {
  if (auto s = supervisor_.steer(live_, balanced); !s) spdlog::warn("cannot steer connections: {}, ignoring", s.error());
  // A kernel program that failed at run time: the listener keeps working, at a cost the
  // operator should know of, so it is an error (status and /metrics show it as well).
  const os::ListenerSet& listeners = supervisor_.listeners();
  std::map<std::string, std::string> failed;  // of the listeners there are now
  for (std::size_t l = 0; l < listeners.configs().size(); ++l) {
    const std::string& name = listeners.configs()[l].name;
    std::string why = listeners.ebpf_error(l);
    if (why.empty()) continue;
    failed[name] = why;
    if (auto logged = ebpf_errors_.find(name); logged != ebpf_errors_.end() && logged->second == why) continue;
    log_with({.listener = name}, spdlog::level::err,
             "listener '{}': the eBPF balancer failed: {}; the sampler balances it instead: the master reads /proc "
             "every {} while a worker is busy (every {} while all wait), which costs CPU and balances less evenly",
             name, why, format_duration(tuning_.fast), format_duration(tuning_.slow));
  }
  ebpf_errors_ = std::move(failed);
}

SlotSample Balancer::last_seen(int slot) {
  if (Clock::now() - sampled_ > status_fresh) {
    sample();
    apply();  // act on what was seen: status never shows more than steering knows
  }
  if (slot < 0 || static_cast<std::size_t>(slot) >= samples_.size()) return SlotSample{slot, Activity::unknown, 0};
  return samples_[static_cast<std::size_t>(slot)];
}

}  // namespace preforkd::daemon
