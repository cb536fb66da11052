#pragma once
// Calls a function on the loop each time an fd is readable (a libuv poll). The fd stays its
// owner's: libuv may make it non-blocking, so watch only an fd the master alone uses.

#include <preforkd/core/result.hpp>
#include <preforkd/daemon/uv/uv_handle.hpp>

#include <functional>
#include <memory>

namespace preforkd::daemon {

class ReadableWatch {
 public:
  // Ok: the fd is readable; an error: polling it failed (libuv's reason), and the watch
  // has stopped.
  using Handler = std::function<void(const Status& readable)>;

  // Stopped until start(). The error names the failing libuv call.
  [[nodiscard]] static Result<std::unique_ptr<ReadableWatch>> open(uv_loop_t* loop, int fd, Handler handler);
  // The error names the failing libuv call.
  [[nodiscard]] Status start();
  // Cannot fail.
  void stop();

 private:
  explicit ReadableWatch(Handler handler) : handler_(std::move(handler)) {}
  static void polled(uv_poll_t* poll, int status, int events);
  UvHandle<uv_poll_t> handle_;
  Handler handler_;
};

}  // namespace preforkd::daemon
