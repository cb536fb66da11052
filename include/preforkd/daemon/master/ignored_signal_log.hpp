#pragma once
// Logs the signals the master receives and ignores (USR1, TSTP, ALRM, WINCH, the real-time
// ones, …: SignalAction::reopen_log and log_and_ignore) at info level, at most one line per
// signal number per second (core/signal_log_limit.hpp): a storm gives one line, then one
// count a second.

#include <preforkd/core/master_signal.hpp>
#include <preforkd/core/signal_log_limit.hpp>
#include <preforkd/daemon/uv/timer.hpp>

#include <memory>

namespace preforkd::daemon {

class IgnoredSignalLog {
 public:
  // The error names the failing libuv call.
  [[nodiscard]] static Result<std::unique_ptr<IgnoredSignalLog>> open(uv_loop_t* loop);
  IgnoredSignalLog(const IgnoredSignalLog&) = delete;
  IgnoredSignalLog& operator=(const IgnoredSignalLog&) = delete;

  void received(int sig, SignalAction action);

 private:
  explicit IgnoredSignalLog(uv_loop_t* loop) : loop_(loop) {}
  void report_counts();
  void arm();
  [[nodiscard]] Duration now() const;

  uv_loop_t* loop_;
  SignalLogLimit limit_;
  std::unique_ptr<Timer> timer_;
};

}  // namespace preforkd::daemon
