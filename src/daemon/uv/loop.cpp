#include <preforkd/daemon/uv/loop.hpp>

#include <preforkd/daemon/uv/uv_error.hpp>

#include <spdlog/spdlog.h>

#include <string>

namespace preforkd::daemon {

Status open_loop(uv_loop_t* loop) {
  if (const int rc = uv_loop_init(loop); rc != 0) return uv_error("uv_loop_init", "event loop", rc);
  return Ok{};
}

// uv_run's result says only whether handles are still active: the caller does not need it.
void run_loop(uv_loop_t* loop) { (void)uv_run(loop, UV_RUN_DEFAULT); }

void stop_loop(uv_loop_t* loop) { uv_stop(loop); }

void close_loop(uv_loop_t* loop) {
  (void)uv_run(loop, UV_RUN_NOWAIT);
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  (void)uv_run(loop, UV_RUN_DEFAULT);
  if (const int rc = uv_loop_close(loop); rc != 0)
    spdlog::warn("{}", uv_failure("uv_loop_close", "event loop", rc));
}

Duration loop_now(uv_loop_t* loop) { return Duration(static_cast<Duration::rep>(uv_now(loop))); }

}  // namespace preforkd::daemon
