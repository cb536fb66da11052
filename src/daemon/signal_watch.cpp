#include <preforkd/daemon/signal_watch.hpp>

#include <string>

namespace preforkd::daemon {

Result<std::unique_ptr<SignalWatch>> SignalWatch::open(uv_loop_t* loop, int signum, std::function<void(int)> on_signal) {
  std::unique_ptr<SignalWatch> self(new SignalWatch(std::move(on_signal)));
  if (int rc = uv_signal_init(loop, self->handle_.get()); rc < 0)
    return Error{std::string("uv_signal_init: ") + uv_strerror(rc)};
  self->handle_.get()->data = self.get();
  if (int rc = uv_signal_start(self->handle_.get(), &SignalWatch::fired, signum); rc < 0)
    return Error{"uv_signal_start for signal " + std::to_string(signum) + ": " + uv_strerror(rc)};
  return self;
}

void SignalWatch::fired(uv_signal_t* s, int signum) {
  if (auto* self = static_cast<SignalWatch*>(s->data)) self->on_signal_(signum);
}

}  // namespace preforkd::daemon
