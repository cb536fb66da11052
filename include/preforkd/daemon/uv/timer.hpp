#pragma once
// A one-shot or repeating libuv timer that calls a function.

#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>
#include <preforkd/daemon/uv/uv_handle.hpp>

#include <functional>
#include <memory>
#include <optional>

namespace preforkd::daemon {

class Timer {
 public:
  // The error names the failing libuv call.
  [[nodiscard]] static Result<std::unique_ptr<Timer>> open(uv_loop_t* loop, std::function<void()> on_fire);
  // Fires after `after`, then every `repeat` (if not zero). libuv refuses only a closing
  // handle, which an open Timer never is: a refusal is logged as an error.
  void start(Duration after, Duration repeat = Duration::zero());
  // Cannot fail.
  void stop();
  [[nodiscard]] bool active();
  // The time left before it fires, when it is armed (for the upgrade handoff).
  [[nodiscard]] std::optional<Duration> remaining();

 private:
  explicit Timer(std::function<void()> on_fire) : on_fire_(std::move(on_fire)) {}
  static void fired(uv_timer_t* t);
  UvHandle<uv_timer_t> handle_;
  std::function<void()> on_fire_;
};

}  // namespace preforkd::daemon
