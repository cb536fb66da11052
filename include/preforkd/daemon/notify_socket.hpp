#pragma once
// The master's own sd_notify socket for its workers: a datagram socket with
// SO_PASSCRED, so every message is attributed to a worker by the sender's pid from
// SCM_CREDENTIALS (which the kernel vouches for), never by what the message says.

#include <preforkd/core/notify_message.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/daemon/uv_handle.hpp>
#include <preforkd/os/fd.hpp>

#include <functional>
#include <memory>
#include <string>
#include <sys/types.h>

namespace preforkd::daemon {

class NotifySocket {
 public:
  using Handler = std::function<void(pid_t sender, const NotifyMessage& message)>;

  // Binds an abstract socket "@preforkd/<master pid>/notify": no file to clean up, and
  // workers running as another user can still reach it.
  [[nodiscard]] static Result<std::unique_ptr<NotifySocket>> open(uv_loop_t* loop, Handler handler);
  // Serves a socket the previous image of this process bound (preforkctl upgrade), so the
  // workers' NOTIFY_SOCKET keeps working across the exec.
  [[nodiscard]] static Result<std::unique_ptr<NotifySocket>> adopt(uv_loop_t* loop, int fd, std::string address,
                                                                   Handler handler);
  ~NotifySocket();
  [[nodiscard]] int fd() const { return fd_.get(); }

  // The NOTIFY_SOCKET value for workers.
  [[nodiscard]] const std::string& address() const { return address_; }

 private:
  NotifySocket() = default;
  static void readable(uv_poll_t* poll, int status, int events);
  void drain();
  [[nodiscard]] Status watch(uv_loop_t* loop);

  os::Fd fd_;
  UvHandle<uv_poll_t> poll_;
  Handler handler_;
  std::string address_;
};

}  // namespace preforkd::daemon
