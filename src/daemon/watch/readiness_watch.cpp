// ready = "accepting": looks for starting workers waiting on their sockets (see the header).

#include <preforkd/daemon/watch/readiness_watch.hpp>

#include <preforkd/os/accept_wait.hpp>

#include <spdlog/spdlog.h>

#include <vector>

namespace preforkd::daemon {

namespace {

// Often enough that a reload is not slowed down noticeably; a look reads a few small
// /proc files per process of each starting tree.
constexpr Duration look_every = std::chrono::milliseconds(25);

template <class F>
void for_each_awaiting(const Supervisor& supervisor, F&& f) {
  for (const SlotView& slot : supervisor.view())
    for (const std::optional<RunView>* run : {&slot.current, &slot.candidate})
      if (*run && awaits_accepting(**run)) f(**run);
}

}  // namespace

bool awaits_accepting(const RunView& run) {
  return run.pid > 0 && run.state == WorkerState::starting && run.ready == ReadyKind::accepting;
}

Result<std::unique_ptr<ReadinessWatch>> ReadinessWatch::open(uv_loop_t* loop, Supervisor& supervisor) {
  std::unique_ptr<ReadinessWatch> self(new ReadinessWatch(supervisor));
  ReadinessWatch* raw = self.get();
  auto timer = Timer::open(loop, [raw] { raw->on_timer(); });
  if (!timer) return Error{"readiness watch timer: " + timer.error()};
  self->timer_ = std::move(*timer);
  return self;
}

void ReadinessWatch::update() {
  if (timer_->active()) return;
  bool any = false;
  for_each_awaiting(supervisor_, [&](const RunView&) { any = true; });
  // The first look at once (on the next loop turn): a fast server may already wait.
  if (any) timer_->start(Duration(1));
}

void ReadinessWatch::on_timer() {
  struct Seen {
    pid_t pid;
    os::AcceptWait how;
    LogFields fields;
  };
  std::vector<Seen> seen;
  bool waiting = false;
  for_each_awaiting(supervisor_, [&](const RunView& run) {
    if (auto how = os::find_accept_wait(run.pid, supervisor_.socket_inodes(run.slot, run.pid))) {
      seen.push_back({run.pid, *how, log_fields(run)});
    } else {
      waiting = true;
      report_if_unreadable(run);
    }
  });
  // After the walk: a worker that becomes ready changes the slots.
  for (const Seen& s : seen) {
    log_with(s.fields, spdlog::level::debug, "worker pid {} is accepting: {} (pid {})", s.pid, s.how.describe(),
             s.how.pid);
    supervisor_.submit(SeenAccepting{s.pid});
  }
  if (waiting) timer_->start(look_every);
}

// Not seen waiting may mean not allowed to look: then it never will be, and the worker
// would only be replaced after ready_timeout with nothing said about why. Said once.
void ReadinessWatch::report_if_unreadable(const RunView& run) {
  if (told_unreadable_) return;
  const Status readable = os::can_look_into(run.pid);
  if (readable) return;
  told_unreadable_ = true;
  log_with(log_fields(run), spdlog::level::err,
           "ready = \"accepting\" cannot see whether worker {} (pid {}) waits for connections: {}; looking into "
           "a process of another user needs CAP_SYS_PTRACE, which a container's default capabilities lack: add it "
           "(--cap-add=SYS_PTRACE, or Kubernetes' securityContext.capabilities.add), run the workers as preforkd's "
           "own user, or use ready = \"notify\" or a delay such as ready = \"1s\"",
           run.slot, run.pid, readable.error());
}

}  // namespace preforkd::daemon
