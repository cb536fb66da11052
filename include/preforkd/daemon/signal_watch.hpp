#pragma once
// A signal delivered through the loop: the C handler only wakes libuv; the callback
// runs on the loop like any other event.

#include <preforkd/core/result.hpp>
#include <preforkd/daemon/uv_handle.hpp>

#include <functional>
#include <memory>

namespace preforkd::daemon {

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
