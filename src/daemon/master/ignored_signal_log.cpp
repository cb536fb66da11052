#include <preforkd/daemon/master/ignored_signal_log.hpp>

#include <preforkd/core/exit_status.hpp>
#include <preforkd/daemon/uv/loop.hpp>

#include <spdlog/spdlog.h>

#include <string>

namespace preforkd::daemon {

namespace {

// "SIGWINCH (signal 28)": the number too, since names differ between tools (SIGIO and
// SIGPOLL, SIGRTMIN+6 and SIGRTMAX-24).
std::string named(int sig) { return signal_name(sig) + " (signal " + std::to_string(sig) + ")"; }

}  // namespace

Result<std::unique_ptr<IgnoredSignalLog>> IgnoredSignalLog::open(uv_loop_t* loop) {
  std::unique_ptr<IgnoredSignalLog> self(new IgnoredSignalLog(loop));
  auto timer = Timer::open(loop, [s = self.get()] { s->report_counts(); });
  if (!timer) return Error{"ignored signals' log: " + timer.error()};
  self->timer_ = std::move(*timer);
  return self;
}

Duration IgnoredSignalLog::now() const { return loop_now(loop_); }

void IgnoredSignalLog::received(int sig, SignalAction action) {
  if (!limit_.arrive(sig, now())) {
    arm();
    return;
  }
  if (action == SignalAction::reopen_log)
    spdlog::info("received {}: preforkd writes no log file to reopen (its log goes to stderr), ignoring", named(sig));
  else
    spdlog::info("received {}: it means nothing to preforkd, ignoring", named(sig));
}

void IgnoredSignalLog::report_counts() {
  for (const auto& c : limit_.due(now()))
    spdlog::info("received {} {} more time{} in {}, ignored", named(c.sig), c.count, c.count == 1 ? "" : "s",
                 format_duration(c.over));
  arm();
}

void IgnoredSignalLog::arm() {
  // Restarted each time: a window that just got its first count may end before the one
  // the timer waits for.
  const auto next = limit_.next_due();
  if (!next) return;
  timer_->start(std::max(Duration::zero(), *next - now()));
}

}  // namespace preforkd::daemon
