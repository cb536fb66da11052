#include <preforkd/daemon/uv/readable_watch.hpp>

#include <preforkd/daemon/uv/uv_error.hpp>

#include <string>

namespace preforkd::daemon {

Result<std::unique_ptr<ReadableWatch>> ReadableWatch::open(uv_loop_t* loop, int fd, Handler handler) {
  std::unique_ptr<ReadableWatch> self(new ReadableWatch(std::move(handler)));
  if (const int rc = uv_poll_init(loop, self->handle_.get(), fd); rc != 0)
    return uv_error("uv_poll_init", "fd " + std::to_string(fd), rc);
  self->handle_.get()->data = self.get();
  return self;
}

Status ReadableWatch::start() {
  if (const int rc = uv_poll_start(handle_.get(), UV_READABLE, &ReadableWatch::polled); rc != 0)
    return uv_error("uv_poll_start", "readable watch", rc);
  return Ok{};
}

// uv_poll_stop returns 0 for any poll handle.
void ReadableWatch::stop() { (void)uv_poll_stop(handle_.get()); }

void ReadableWatch::polled(uv_poll_t* poll, int status, int) {
  auto* self = static_cast<ReadableWatch*>(poll->data);
  if (self == nullptr) return;
  if (status < 0) {
    self->stop();
    return self->handler_(uv_error("poll", "readable watch", status));
  }
  self->handler_(Ok{});
}

}  // namespace preforkd::daemon
