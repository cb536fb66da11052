// Fail fast: refuses a listener's connections while no worker has been ready for too long.

#include <preforkd/daemon/balance/fail_fast.hpp>

#include <preforkd/daemon/log/logging.hpp>
#include <preforkd/os/connection_reset.hpp>
#include <preforkd/os/input_watch.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

namespace preforkd::daemon {

namespace {

// Connections reset per wake-up, so that a flood cannot hold the loop.
constexpr int reset_batch = 256;
// After accept failed (EMFILE: the master is out of fds), the next try.
constexpr Duration retry_paused = std::chrono::seconds(1);

Duration since_epoch(Clock::time_point t) { return std::chrono::duration_cast<Duration>(t.time_since_epoch()); }

bool per_slot(const ListenConfig& c) {
  return c.mode == ListenMode::reuseport && c.address.family != AddressFamily::unix_path;
}

}  // namespace

// A poll on one held socket of a refusing listener: through an epoll instance of the
// master's own (os/input_watch), since uv_poll_init on the socket would set O_NONBLOCK on
// the open file the workers share. Declared before the handle, so the handle is closed
// (and libuv stops polling the epoll fd) before the epoll fd is.
struct FailFast::Poll {
  FailFast* owner = nullptr;
  std::string listener;
  int fd = -1;
  ino_t inode = 0;
  bool paused = false;  // accept failed (no fd left): resumed at the next update
  std::optional<os::InputWatch> watch;
  std::unique_ptr<ReadableWatch> readable;
};

Result<std::unique_ptr<FailFast>> FailFast::open(uv_loop_t* loop, Supervisor& supervisor, const Config& config) {
  std::unique_ptr<FailFast> self(new FailFast(loop, supervisor, config));
  FailFast* raw = self.get();
  auto timer = Timer::open(loop, [raw] { raw->update(); });
  if (!timer) return Error{"fail-fast timer: " + timer.error()};
  self->timer_ = std::move(*timer);
  return self;
}

FailFast::FailFast(uv_loop_t* loop, Supervisor& supervisor, const Config& config)
    : loop_(loop), supervisor_(supervisor), config_(config) {}

FailFast::~FailFast() { polls_.clear(); }

Duration FailFast::threshold(const ListenConfig& listener) const {
  for (const ListenConfig& c : config_.listeners)
    if (c.name == listener.name) return c.fail_fast_after;
  return listener.fail_fast_after;
}

FailFast::Facts FailFast::facts(const std::string& name) const {
  auto it = listeners_.find(name);
  if (it == listeners_.end()) return {};
  return {it->second.state.refusing, it->second.refused_total};
}

void FailFast::update() {
  const auto now = Clock::now();
  // Every listener is served by every slot: one answer for all of them. An adaptive pool
  // that keeps no worker at all (ondemand, idle) is not failing: the next connection
  // starts one (daemon/operations/pool), so the clock runs only once a worker is wanted.
  const bool any_ready = supervisor_.ready_count() > 0 || [&] {
    const std::vector<SlotView> slots = supervisor_.view();
    bool all_parked = !slots.empty();
    for (const SlotView& s : slots) {
      if (!s.removing && s.candidate && s.candidate->state == WorkerState::ready) return true;
      all_parked = all_parked && s.parked;
    }
    return all_parked;
  }();
  std::optional<Duration> next_check;
  for (const ListenConfig& c : supervisor_.listeners().configs()) {
    Listener& l = listeners_[c.name];
    const Duration after = threshold(c);
    const FailFastStep step = fail_fast_step(l.state, any_ready, since_epoch(now), after);
    l.state = step.next;
    switch (step.change) {
      case FailFastChange::started:
        log_with({.listener = c.name}, spdlog::level::warn,
                 "listener '{}': no worker ready for {}, refusing connections until one is", c.name,
                 format_duration(after));
        break;
      case FailFastChange::ended:
        log_with({.listener = c.name}, spdlog::level::info,
                 "listener '{}': {}, no longer refusing connections ({} refused in {:.1f}s)", c.name,
                 any_ready ? "a worker is ready" : "fail_fast_after is off", step.refused,
                 std::chrono::duration<double>(step.refused_for).count());
        break;
      case FailFastChange::none:
        break;
    }
    if (step.check_at && (!next_check || *step.check_at < *next_check)) next_check = step.check_at;
  }
  sync_polls();
  const bool any_paused = std::any_of(polls_.begin(), polls_.end(), [](const auto& p) { return p->paused; });
  if (next_check) {
    timer_->start(std::max(*next_check - since_epoch(now), Duration(1)));
  } else if (any_paused) {
    timer_->start(retry_paused);
  } else {
    timer_->stop();
  }
}

// Polls exactly the sockets core/fail_fast_plan says to drain.
void FailFast::sync_polls() {
  const os::ListenerSet& set = supervisor_.listeners();
  const std::vector<SlotView> slots = supervisor_.view();
  std::vector<bool> has_process(slots.size(), false);
  for (std::size_t i = 0; i < slots.size(); ++i) has_process[i] = slots[i].has_process();
  struct Wanted {
    std::string listener;
    int fd;
  };
  std::vector<Wanted> wanted;
  const int slot_count = set.slot_count();
  for (std::size_t l = 0; l < set.configs().size(); ++l) {
    const ListenConfig& c = set.configs()[l];
    const auto it = listeners_.find(c.name);
    if (it == listeners_.end() || !it->second.state.refusing || slot_count == 0) continue;
    std::vector<std::vector<int>> holders;
    std::vector<int> fds;
    if (per_slot(c)) {
      for (int s = 0; s < slot_count; ++s) {
        holders.push_back({s});
        fds.push_back(set.fds_for_slot(s)[l]);
      }
    } else {
      std::vector<int> all;
      for (int s = 0; s < slot_count; ++s) all.push_back(s);
      holders.push_back(std::move(all));
      fds.push_back(set.fds_for_slot(0)[l]);
    }
    const std::vector<bool> drain = sockets_to_refuse_on(true, holders, has_process);
    for (std::size_t i = 0; i < fds.size(); ++i)
      if (drain[i]) wanted.push_back({c.name, fds[i]});
  }

  // Keep the polls that are still wanted (same fd, same socket), close the others.
  std::vector<std::unique_ptr<Poll>> kept;
  for (auto& p : polls_) {
    const bool still = std::any_of(wanted.begin(), wanted.end(), [&](const Wanted& w) {
      return w.fd == p->fd && w.listener == p->listener && os::socket_inode(w.fd) == p->inode;
    });
    if (still) kept.push_back(std::move(p));
  }
  polls_ = std::move(kept);  // the rest close here (UvHandle stops and closes them)
  for (const Wanted& w : wanted) {
    auto found = std::find_if(polls_.begin(), polls_.end(), [&](const auto& p) { return p->fd == w.fd; });
    if (found != polls_.end()) {
      if ((*found)->paused) start(**found);
      continue;
    }
    auto p = std::make_unique<Poll>();
    p->owner = this;
    p->listener = w.listener;
    p->fd = w.fd;
    p->inode = os::socket_inode(w.fd);
    auto watch = os::InputWatch::open(w.fd);
    if (!watch) {
      log_with({.listener = w.listener}, spdlog::level::warn,
               "listener '{}': cannot refuse connections: {}, ignoring", w.listener, watch.error());
      continue;
    }
    p->watch = std::move(*watch);
    // The epoll fd is the master's alone: libuv may make it non-blocking.
    Poll* raw = p.get();
    auto readable = ReadableWatch::open(loop_, p->watch->fd(), [raw](const Status& st) {
      if (!st) return raw->owner->pause(*raw, st.error());
      raw->owner->on_readable(*raw);
    });
    if (!readable) {
      log_with({.listener = w.listener}, spdlog::level::warn, "listener '{}': cannot refuse connections: {}, ignoring",
               w.listener, readable.error());
      continue;
    }
    p->readable = std::move(*readable);
    start(*p);
    polls_.push_back(std::move(p));
  }
}

void FailFast::start(Poll& poll) {
  const Status st = poll.readable->start();
  poll.paused = !st;
  if (!st)
    log_with({.listener = poll.listener}, spdlog::level::warn, "listener '{}': cannot refuse connections: {}, ignoring",
             poll.listener, st.error());
}

void FailFast::pause(Poll& poll, const std::string& why) {
  log_with({.listener = poll.listener}, spdlog::level::warn,
           "listener '{}': cannot refuse connections: {}; trying again in {}", poll.listener, why,
           format_duration(retry_paused));
  poll.readable->stop();
  poll.paused = true;
  timer_->start(retry_paused);
}

void FailFast::on_readable(Poll& poll) {
  // A reload may have closed the fd and reused its number before the next update().
  // Stopped quietly: the next update() drops the poll (it finds another inode there).
  if (os::socket_inode(poll.fd) != poll.inode) {
    poll.readable->stop();
    poll.paused = true;
    timer_->start(retry_paused);
    return;
  }
  const auto it = listeners_.find(poll.listener);
  auto count = os::reset_waiting_connections(poll.fd, reset_batch);
  if (!count) return pause(poll, count.error());
  if (it != listeners_.end()) {
    it->second.state.refused += static_cast<std::uint64_t>(count->reset);
    it->second.refused_total += static_cast<std::uint64_t>(count->reset);
  }
  if (!count->error.empty()) pause(poll, count->error);
}

}  // namespace preforkd::daemon
