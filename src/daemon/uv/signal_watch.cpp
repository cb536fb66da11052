#include <preforkd/daemon/uv/signal_watch.hpp>

#include <preforkd/daemon/uv/uv_error.hpp>
#include <preforkd/os/signal_disposition.hpp>

#include <string>

namespace preforkd::daemon {

namespace {

sigset_t master_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : master_signals()) sigaddset(&set, sig);
  return set;
}

}  // namespace

RealtimeRange realtime_signals() { return RealtimeRange{SIGRTMIN, SIGRTMAX}; }

SignalAction master_signal_action(int sig) { return preforkd::master_signal_action(sig, realtime_signals()); }

std::vector<int> master_signals() {
  std::vector<int> watched;
  for (int sig = 1; sig < NSIG; ++sig)
    if (watched_on_loop(master_signal_action(sig))) watched.push_back(sig);
  return watched;
}

void block_master_signals() {
  const sigset_t set = master_signal_set();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
}

void unblock_master_signals() {
  const sigset_t set = master_signal_set();
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

void restore_signal_mask(const std::vector<int>& signals) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : signals) sigaddset(&mask, sig);
  ::sigprocmask(SIG_SETMASK, &mask, nullptr);
}

Status ignore_unwatched_signals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    const SignalAction action = master_signal_action(sig);
    if (action != SignalAction::ignore_in_kernel && action != SignalAction::libc_reserved) continue;
    if (Status st = os::ignore_signal(sig); !st) return st;
  }
  return Ok{};
}

Result<std::unique_ptr<SignalWatch>> SignalWatch::open(uv_loop_t* loop, int signum, std::function<void(int)> on_signal) {
  std::unique_ptr<SignalWatch> self(new SignalWatch(std::move(on_signal)));
  if (int rc = uv_signal_init(loop, self->handle_.get()); rc < 0)
    return uv_error("uv_signal_init", "signal " + std::to_string(signum), rc);
  self->handle_.get()->data = self.get();
  if (int rc = uv_signal_start(self->handle_.get(), &SignalWatch::fired, signum); rc < 0)
    return uv_error("uv_signal_start", "signal " + std::to_string(signum), rc);
  return self;
}

void SignalWatch::fired(uv_signal_t* s, int signum) {
  if (auto* self = static_cast<SignalWatch*>(s->data)) self->on_signal_(signum);
}

}  // namespace preforkd::daemon
