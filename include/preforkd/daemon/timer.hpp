#pragma once
// A one-shot or repeating libuv timer that calls a function.

#include <preforkd/core/units.hpp>
#include <preforkd/daemon/uv_handle.hpp>

#include <functional>

namespace preforkd::daemon {

class Timer {
 public:
  Timer(uv_loop_t* loop, std::function<void()> on_fire);
  void start(Duration after, Duration repeat = Duration::zero());
  void stop();
  [[nodiscard]] bool active();

 private:
  static void fired(uv_timer_t* t);
  UvHandle<uv_timer_t> handle_;
  std::function<void()> on_fire_;
};

}  // namespace preforkd::daemon
