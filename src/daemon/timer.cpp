#include <preforkd/daemon/timer.hpp>

namespace preforkd::daemon {

Timer::Timer(uv_loop_t* loop, std::function<void()> on_fire) : on_fire_(std::move(on_fire)) {
  uv_timer_init(loop, handle_.get());
  handle_.get()->data = this;
}

void Timer::start(Duration after, Duration repeat) {
  uv_timer_start(handle_.get(), &Timer::fired, static_cast<uint64_t>(after.count()),
                 static_cast<uint64_t>(repeat.count()));
}

void Timer::stop() { uv_timer_stop(handle_.get()); }

bool Timer::active() { return uv_is_active(handle_.base()) != 0; }

void Timer::fired(uv_timer_t* t) {
  if (auto* self = static_cast<Timer*>(t->data)) self->on_fire_();
}

}  // namespace preforkd::daemon
