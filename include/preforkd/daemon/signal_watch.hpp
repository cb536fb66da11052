#pragma once
// A signal delivered through the loop: the C handler only wakes libuv; the callback
// runs on the loop like any other event.

#include <preforkd/core/result.hpp>
#include <preforkd/daemon/uv_handle.hpp>

#include <array>
#include <csignal>
#include <functional>
#include <memory>
#include <vector>

namespace preforkd::daemon {

// The signals the master acts on (stop, reload, scale, children, upgrade). They are blocked
// from the first line of main() until their watches are in place, so that one sent while the
// master starts (systemd's stop, a test's SIGTERM) waits and then stops it cleanly instead of
// killing it with the default action.
inline constexpr std::array<int, 8> master_signals{SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGTTIN, SIGTTOU, SIGCHLD, SIGUSR2};

// Blocks master_signals (what was blocked already stays blocked).
void block_master_signals();
// Unblocks master_signals, whatever the mask inherited from the parent: their handlers are
// in place, and pending ones are delivered now.
void unblock_master_signals();
// Sets the signal mask to exactly `signals` (the old image's mask before an upgrade).
void restore_signal_mask(const std::vector<int>& signals);

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
