// The adaptive pool's driver: sample, plan (core/pool_plan), carry out.

#include <preforkd/daemon/operations/pool.hpp>

#include <preforkd/daemon/log/logging.hpp>
#include <preforkd/os/connection_reset.hpp>
#include <preforkd/os/input_watch.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace preforkd::daemon {

namespace {

// How often the slots are sampled while workers run: often enough that a shortage is
// acted on within 100 ms of the first queued connection (issue #20).
constexpr Duration sample_busy = std::chrono::milliseconds(20);
constexpr Duration sample_idle = std::chrono::milliseconds(50);
// A worker ready but not yet seen waiting counts as starting for at most this long, so that
// a growth step that is still coming up is not doubled at once.
constexpr Duration settle_max = std::chrono::milliseconds(100);

Duration since_epoch(Clock::time_point t) { return std::chrono::duration_cast<Duration>(t.time_since_epoch()); }

bool per_slot(const ListenConfig& c) {
  return c.mode == ListenMode::reuseport && c.address.family != AddressFamily::unix_path;
}

// Connections waiting on one socket: TCP_INFO, or for a unix socket whether one waits.
int depth(const os::ListenerSet& set, std::size_t listener, int slot) {
  const int n = set.accept_queue_depth(listener, slot);
  if (n >= 0) return n;
  const auto waiting = os::input_waiting(set.fds_for_slot(slot)[listener]);
  return waiting && *waiting ? 1 : 0;
}

}  // namespace

// A watch on one held socket of a slot without a worker (or a shared socket while no slot
// has one): an epoll of the master's own, polled by libuv, so that the socket's open file
// (the workers') is never made non-blocking. Stopped once it fires; sync_watches() starts
// it again if it is still wanted.
struct Pool::Watch {
  Pool* owner = nullptr;
  int fd = -1;
  ino_t inode = 0;
  bool armed = false;
  std::optional<os::InputWatch> watch;
  std::unique_ptr<ReadableWatch> readable;  // after `watch`: closed before the epoll fd is
};

Result<std::unique_ptr<Pool>> Pool::open(uv_loop_t* loop, Supervisor& supervisor, Balancer& balancer,
                                         Operations& operations) {
  std::unique_ptr<Pool> self(new Pool(loop, supervisor, balancer, operations));
  Pool* raw = self.get();
  auto timer = Timer::open(loop, [raw] { raw->tick(); });
  if (!timer) return Error{"pool timer: " + timer.error()};
  self->timer_ = std::move(*timer);
  return self;
}

Pool::Pool(uv_loop_t* loop, Supervisor& supervisor, Balancer& balancer, Operations& operations)
    : loop_(loop), supervisor_(supervisor), balancer_(balancer), operations_(operations) {}

Pool::~Pool() { watches_.clear(); }

void Pool::update() {
  if (supervisor_.stopping()) {
    watches_.clear();
    timer_->stop();
    return;
  }
  sync_watches();
  const bool adaptive = supervisor_.generation().worker.pool.mode != PoolMode::fixed;
  const bool parked = std::ranges::any_of(supervisor_.view(), [](const SlotView& s) { return s.parked; });
  // A static pool with every slot running is today's supervisor: nothing to sample.
  if (!adaptive && !parked) {
    timer_->stop();
    return;
  }
  if (!timer_->active()) timer_->start(sample_busy);
}

std::vector<PoolSlot> Pool::sample(Clock::time_point now, int& queued_shared) {
  const std::vector<SlotView> slots = supervisor_.view();
  const os::ListenerSet& set = supervisor_.listeners();
  seen_.resize(slots.size());
  std::vector<PoolSlot> out;
  queued_shared = 0;
  for (std::size_t l = 0; l < set.configs().size() && set.slot_count() > 0; ++l)
    if (!per_slot(set.configs()[l])) queued_shared += depth(set, l, 0);
  waiting_ = 0;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const SlotView& slot = slots[i];
    const int s = static_cast<int>(i);
    PoolSlot p;
    p.slot = s;
    for (std::size_t l = 0; l < set.configs().size() && s < set.slot_count(); ++l)
      if (per_slot(set.configs()[l])) p.queued += depth(set, l, s);
    const std::optional<RunView>& run = slot.current;
    const WorkerState state = run ? run->state : WorkerState::stopped;
    Seen& seen = seen_[i];
    const pid_t pid = run ? run->pid : -1;
    if (seen.pid != pid) seen = Seen{pid, false, {}};
    if (slot.removing || (slot.parked && has_process(state))) {
      p.state = PoolSlotState::draining;
    } else if (slot.parked) {
      p.state = PoolSlotState::empty;
    } else if (state == WorkerState::ready) {
      p.activity = balancer_.activity_of(s);
      if (p.activity == Activity::waiting) seen.waited = true;
      const bool settled = seen.waited || now - run->started >= settle_max;
      p.state = settled ? PoolSlotState::running : PoolSlotState::starting;
    } else if (state == WorkerState::stopped || state == WorkerState::failed) {
      // Not restarted by its policy (restart = "never", on-failure after exit 0): it
      // holds its slot but takes nothing; `preforkctl restart` brings it back.
      p.state = PoolSlotState::running;
    } else {
      p.state = PoolSlotState::starting;  // starting, backing off after a crash, restarting
    }
    if (p.state == PoolSlotState::running && p.activity == Activity::waiting && p.queued == 0) {
      if (!seen.idle_since) seen.idle_since = since_epoch(now);
      ++waiting_;
    } else {
      seen.idle_since.reset();
    }
    p.idle_since = seen.idle_since;
    out.push_back(p);
  }
  return out;
}

void Pool::tick() {
  if (supervisor_.stopping()) return;
  const auto now = Clock::now();
  const PoolConfig& config = supervisor_.generation().worker.pool;
  int queued_shared = 0;
  const std::vector<PoolSlot> slots = sample(now, queued_shared);
  PoolInputs in;
  in.mode = config.mode;
  in.min_count = config.min_count;
  in.spare = config.spare;
  in.idle_timeout = config.idle_timeout;
  in.queued_shared = queued_shared;
  in.step = step_;
  in.now = since_epoch(now);
  const PoolDecision d = plan_pool(slots, in);
  // A change is an operation: refused while a reload, restart, scale, recycle or upgrade
  // runs or waits (core/operation_queue.hpp), and the next sample looks again.
  const bool may_act = supervisor_.pool_may_act();
  if (may_act) {
    if (d.kind != PoolDecision::Kind::none)
      carry_out(d);
    else
      step_ = d.step;
  }
  sync_watches();
  const bool live = std::ranges::any_of(slots, [](const PoolSlot& p) { return p.state != PoolSlotState::empty; });
  const bool calm = std::ranges::all_of(slots, [](const PoolSlot& p) {
    return p.state == PoolSlotState::empty ||
           (p.state == PoolSlotState::running && p.activity == Activity::waiting && p.queued == 0);
  });
  // With no worker at all, the watches start the next one: no sampling needed.
  if (!live && d.kind == PoolDecision::Kind::none && may_act && config.mode != PoolMode::fixed) {
    timer_->stop();
    return;
  }
  timer_->start(calm && queued_shared == 0 ? sample_idle : sample_busy);
}

void Pool::carry_out(const PoolDecision& d) {
  // Growth and shrink take no time of their own: the operation is complete once done.
  operations_.submit({OperationKind::pool,
                      [this, d](Done complete) {
                        const Status st = act(d);
                        complete(st, st ? pool_log_line(d) : st.error());
                      },
                      [](const Status& st, const std::string&) {
                        if (!st) spdlog::debug("pool: not now: {}", st.error());  // refused, or act() said why
                      }});
}

Status Pool::act(const PoolDecision& d) {
  step_ = d.step;
  // Said before it is done: the lines of the workers it starts or stops follow it.
  spdlog::info("{}", pool_log_line(d));
  const Status done = d.kind == PoolDecision::Kind::grow ? supervisor_.pool_start(d.start) : supervisor_.pool_retire(d.retire);
  if (!done) {
    spdlog::warn("pool: cannot {} ({}): {}, ignoring", d.kind == PoolDecision::Kind::grow ? "grow" : "shrink",
                 d.reason, done.error());
    return done;
  }
  last_ = PoolChange{std::chrono::system_clock::now(), d.from, d.to, d.reason};
  if (d.kind == PoolDecision::Kind::grow) grown_ += d.start.size();
  else ++shrunk_;
  return Ok{};
}

void Pool::sync_watches() {
  const os::ListenerSet& set = supervisor_.listeners();
  const std::vector<SlotView> slots = supervisor_.view();
  std::vector<int> wanted;
  if (!supervisor_.stopping()) {
    bool any_worker = false;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const SlotView& s = slots[i];
      const bool empty = s.parked && !(s.current && has_process(s.current->state));
      any_worker = any_worker || !empty;
      if (!empty || static_cast<int>(i) >= set.slot_count()) continue;
      for (std::size_t l = 0; l < set.configs().size(); ++l)
        if (per_slot(set.configs()[l])) wanted.push_back(set.fds_for_slot(static_cast<int>(i))[l]);
    }
    for (std::size_t l = 0; l < set.configs().size() && !any_worker && set.slot_count() > 0; ++l)
      if (!per_slot(set.configs()[l])) wanted.push_back(set.fds_for_slot(0)[l]);
  }
  std::vector<std::unique_ptr<Watch>> kept;
  for (auto& w : watches_)
    if (std::ranges::find(wanted, w->fd) != wanted.end() && os::socket_inode(w->fd) == w->inode) kept.push_back(std::move(w));
  watches_ = std::move(kept);
  for (int fd : wanted) {
    auto found = std::ranges::find_if(watches_, [&](const auto& w) { return w->fd == fd; });
    Watch* w = found != watches_.end() ? found->get() : nullptr;
    if (w == nullptr) {
      auto made = std::make_unique<Watch>();
      made->owner = this;
      made->fd = fd;
      made->inode = os::socket_inode(fd);
      auto watch = os::InputWatch::open(fd);
      if (!watch) {
        spdlog::warn("pool: cannot watch a socket of a slot without a worker: {}, ignoring", watch.error());
        continue;
      }
      made->watch = std::move(*watch);
      // The epoll fd is the master's alone: libuv may make it non-blocking.
      Watch* raw = made.get();
      auto readable = ReadableWatch::open(loop_, made->watch->fd(), [raw](const Status&) {
        // Readable, or the poll failed (it has stopped): either way, look now.
        raw->owner->on_readable(*raw);
      });
      if (!readable) {
        spdlog::warn("pool: cannot watch a socket of a slot without a worker: {}, ignoring", readable.error());
        continue;
      }
      made->readable = std::move(*readable);
      w = made.get();
      watches_.push_back(std::move(made));
    }
    if (w->armed) continue;
    const Status started = w->readable->start();
    w->armed = static_cast<bool>(started);
    if (!started) spdlog::warn("pool: cannot watch a socket of a slot without a worker: {}, ignoring", started.error());
  }
}

void Pool::on_readable(Watch& w) {
  // Level-triggered: stopped until the next sample has acted on it, or the loop would spin.
  w.readable->stop();
  w.armed = false;
  tick();
}

PoolView Pool::view() const {
  PoolView v;
  const PoolConfig& config = supervisor_.generation().worker.pool;
  v.mode = config.mode;
  v.max = supervisor_.target_count();
  v.min = config.mode == PoolMode::fixed ? v.max : config.min_count;
  for (const SlotView& s : supervisor_.view())
    if (!s.parked && !s.removing) ++v.live;
  v.waiting = waiting_;
  v.last = last_;
  v.grown = grown_;
  v.shrunk = shrunk_;
  return v;
}

}  // namespace preforkd::daemon
