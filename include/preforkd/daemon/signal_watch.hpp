#pragma once
// A signal delivered through the loop: the C handler only wakes libuv; the callback
// runs on the loop like any other event.

#include <preforkd/daemon/uv_handle.hpp>

#include <functional>

namespace preforkd::daemon {

class SignalWatch {
 public:
  SignalWatch(uv_loop_t* loop, int signum, std::function<void(int)> on_signal);

 private:
  static void fired(uv_signal_t* s, int signum);
  UvHandle<uv_signal_t> handle_;
  std::function<void(int)> on_signal_;
};

}  // namespace preforkd::daemon
