#include <preforkd/daemon/signal_watch.hpp>

namespace preforkd::daemon {

SignalWatch::SignalWatch(uv_loop_t* loop, int signum, std::function<void(int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  uv_signal_init(loop, handle_.get());
  handle_.get()->data = this;
  uv_signal_start(handle_.get(), &SignalWatch::fired, signum);
}

void SignalWatch::fired(uv_signal_t* s, int signum) {
  if (auto* self = static_cast<SignalWatch*>(s->data)) self->on_signal_(signum);
}

}  // namespace preforkd::daemon
