#pragma once
// A worker run's own sd_notify socket: a datagram socket with SO_PASSCRED, one per run
// (as systemd's notify socket is one per service), so a message is attributed by the
// socket it arrives on, never by the pid it claims. Whoever holds the socket also gets
// the sender's pid from SCM_CREDENTIALS (which the kernel vouches for, except for a root
// sender, which may name any pid): the supervisor checks it against the run's worker.

#include <preforkd/core/notify_message.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/daemon/uv/uv_handle.hpp>
#include <preforkd/os/fd.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <sys/types.h>

namespace preforkd::daemon {

struct NotifySocketError {
  std::string message;
  bool fd_shortage = false;  // EMFILE or ENFILE: the master is short of fds
};

class NotifySocket {
 public:
  using Handler = std::function<void(pid_t sender, const NotifyMessage& message)>;

  // Binds an abstract socket "@<prefix><serial>", the first serial from `serial` on that
  // is free (an upgraded master still serves its old image's names), and advances
  // `serial` past it. Abstract: no file to clean up, and workers running as another user
  // (worker.user) can still reach it.
  [[nodiscard]] static Result<std::unique_ptr<NotifySocket>, NotifySocketError> open(uv_loop_t* loop,
                                                                                     const std::string& prefix,
                                                                                     std::uint64_t& serial,
                                                                                     Handler handler);
  // Serves a socket the previous image of this process bound (preforkctl upgrade), so the
  // workers' NOTIFY_SOCKET keeps working across the exec.
  [[nodiscard]] static Result<std::unique_ptr<NotifySocket>> adopt(uv_loop_t* loop, int fd, std::string address,
                                                                   Handler handler);
  ~NotifySocket();
  [[nodiscard]] int fd() const { return fd_.get(); }

  // The NOTIFY_SOCKET value for workers.
  [[nodiscard]] const std::string& address() const { return address_; }

  // No more messages are read or handed on (its run has left); the socket stays bound
  // until it is destroyed. Safe from inside the handler.
  void stop();

 private:
  NotifySocket() = default;
  static void readable(uv_poll_t* poll, int status, int events);
  void drain();
  [[nodiscard]] Status watch(uv_loop_t* loop);

  os::Fd fd_;
  UvHandle<uv_poll_t> poll_;
  Handler handler_;
  std::string address_;
  bool stopped_ = false;
};

}  // namespace preforkd::daemon
