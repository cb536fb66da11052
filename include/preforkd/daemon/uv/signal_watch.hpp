#pragma once
// A signal delivered through the loop: the C handler only wakes libuv; the callback
// runs on the loop like any other event.

#include <preforkd/core/master_signal.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/daemon/uv/uv_handle.hpp>

#include <csignal>
#include <functional>
#include <memory>
#include <vector>

namespace preforkd::daemon {

// SIGRTMIN and SIGRTMAX of the running C library.
[[nodiscard]] RealtimeRange realtime_signals();
// What the master does with `sig` (core/master_signal.hpp) in this process.
[[nodiscard]] SignalAction master_signal_action(int sig);

// The signals the master watches on its loop: every catchable one (real-time ones included)
// but PIPE (ignored), the fault signals (default, so a real fault dumps core) and glibc's
// own 32 and 33 (ignored). They are blocked from the first line of main() until their watches
// are in place, so that one sent while the master starts (systemd's stop, a test's SIGTERM, a
// stray USR1) waits and then has its action instead of killing the master by the default one.
[[nodiscard]] std::vector<int> master_signals();

// Blocks master_signals() (what was blocked already stays blocked).
void block_master_signals();
// Unblocks master_signals(), whatever the mask inherited from the parent: their handlers are
// in place, and pending ones are delivered now.
void unblock_master_signals();
// Sets the signal mask to exactly `signals` (the old image's mask before an upgrade).
void restore_signal_mask(const std::vector<int>& signals);
// SIG_IGN for the signals the master ignores in the kernel rather than on its loop: PIPE and
// the C library's reserved ones. The error names the first that failed.
[[nodiscard]] Status ignore_unwatched_signals();

class SignalWatch {
 public:
  // Watches `signum` from now on. The error names the failing libuv call and the signal.
  [[nodiscard]] static Result<std::unique_ptr<SignalWatch>> open(uv_loop_t* loop, int signum,
                                                                 std::function<void(int)> on_signal);

 private:
  explicit SignalWatch(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {}
  static void fired(uv_signal_t* s, int signum);
  UvHandle<uv_signal_t> handle_;
  std::function<void(int)> on_signal_;
};

}  // namespace preforkd::daemon
