#include <preforkd/daemon/uv/timer.hpp>

#include <preforkd/daemon/uv/uv_error.hpp>

#include <spdlog/spdlog.h>

#include <string>

namespace preforkd::daemon {

Result<std::unique_ptr<Timer>> Timer::open(uv_loop_t* loop, std::function<void()> on_fire) {
  std::unique_ptr<Timer> self(new Timer(std::move(on_fire)));
  if (int rc = uv_timer_init(loop, self->handle_.get()); rc < 0)
    return uv_error("uv_timer_init", "timer", rc);
  self->handle_.get()->data = self.get();
  return self;
}

// uv_timer_start fails only for a closing handle or without a callback, neither of
// which can happen to a Timer that open() returned: logged, should it ever.
void Timer::start(Duration after, Duration repeat) {
  if (const int rc = uv_timer_start(handle_.get(), &Timer::fired, static_cast<uint64_t>(after.count()),
                                    static_cast<uint64_t>(repeat.count()));
      rc != 0) {
    spdlog::error("{}", uv_failure("uv_timer_start", "timer", rc));
  }
}

// uv_timer_stop returns 0 for any timer.
void Timer::stop() { (void)uv_timer_stop(handle_.get()); }

bool Timer::active() { return uv_is_active(handle_.base()) != 0; }

std::optional<Duration> Timer::remaining() {
  if (!active()) return std::nullopt;
  return Duration(static_cast<Duration::rep>(uv_timer_get_due_in(handle_.get())));
}

void Timer::fired(uv_timer_t* t) {
  if (auto* self = static_cast<Timer*>(t->data)) self->on_fire_();
}

}  // namespace preforkd::daemon
