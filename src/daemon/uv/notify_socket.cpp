#include <preforkd/daemon/uv/notify_socket.hpp>

#include <preforkd/daemon/uv/uv_error.hpp>
#include <preforkd/core/limits.hpp>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace preforkd::daemon {

namespace {

// Names tried before giving up: enough to step over every live run an upgraded master
// took over (their names are its old image's), with room for names squatted by others.
constexpr std::uint64_t max_bind_attempts = 4 * static_cast<std::uint64_t>(max_workers) + 64;

}  // namespace

Result<std::unique_ptr<NotifySocket>, NotifySocketError> NotifySocket::open(uv_loop_t* loop, const std::string& prefix,
                                                                            std::uint64_t& serial, Handler handler) {
  std::unique_ptr<NotifySocket> self(new NotifySocket());
  self->handler_ = std::move(handler);
  self->fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!self->fd_.valid()) {
    const int e = errno;
    return NotifySocketError{os::failed_to("create", "notify socket", os::errno_text(e)), e == EMFILE || e == ENFILE};
  }
  const int on = 1;
  if (::setsockopt(self->fd_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
    return NotifySocketError{os::failed_to("set SO_PASSCRED on", "notify socket", os::errno_text(errno))};

  for (std::uint64_t attempt = 0;; ++attempt) {
    const std::string name = prefix + std::to_string(serial++);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (name.size() + 1 > sizeof addr.sun_path)
      return NotifySocketError{"notify socket: name '@" + name + "' is too long"};
    // Abstract namespace: a leading NUL byte, written as '@' in NOTIFY_SOCKET.
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (::bind(self->fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0) {
      self->address_ = "@" + name;
      break;
    }
    const int e = errno;
    if (e != EADDRINUSE || attempt + 1 >= max_bind_attempts)
      return NotifySocketError{os::failed_to("bind notify socket", "@" + name, os::errno_text(e))};
  }
  if (Status st = self->watch(loop); !st) return NotifySocketError{st.error()};
  return self;
}

Result<std::unique_ptr<NotifySocket>> NotifySocket::adopt(uv_loop_t* loop, int fd, std::string address,
                                                          Handler handler) {
  std::unique_ptr<NotifySocket> self(new NotifySocket());
  self->handler_ = std::move(handler);
  self->fd_.reset(fd);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // inheritable only for the exec that brought it here
  self->address_ = std::move(address);
  if (Status st = self->watch(loop); !st) return Error{st.error()};
  return self;
}

Status NotifySocket::watch(uv_loop_t* loop) {
  if (int rc = uv_poll_init(loop, poll_.get(), fd_.get()); rc < 0)
    return uv_error("uv_poll_init", "notify socket", rc);
  poll_.get()->data = this;
  if (int rc = uv_poll_start(poll_.get(), UV_READABLE, &NotifySocket::readable); rc < 0)
    return uv_error("uv_poll_start", "notify socket", rc);
  return Ok{};
}

NotifySocket::~NotifySocket() { poll_.close(); }

void NotifySocket::stop() {
  if (stopped_) return;
  stopped_ = true;
  (void)uv_poll_stop(poll_.get());  // returns 0 for any poll handle
}

void NotifySocket::readable(uv_poll_t* poll, int status, int) {
  auto* self = static_cast<NotifySocket*>(poll->data);
  if (self != nullptr && status == 0 && !self->stopped_) self->drain();
}

void NotifySocket::drain() {
  char buf[max_notify_bytes + 1];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * 16)];
  // The handler may stop this socket (its run left): then read nothing more.
  while (!stopped_) {
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (n < 0) return;  // EAGAIN: drained
    pid_t sender = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        sender = cred.pid;
      } else if (c->cmsg_type == SCM_RIGHTS) {
        // Passed fds (FDSTORE=1) are not supported: close them rather than leak them.
        const auto count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int fd = -1;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          ::close(fd);
        }
      }
    }
    if (static_cast<std::size_t>(n) > max_notify_bytes || (msg.msg_flags & MSG_TRUNC) != 0) {
      spdlog::debug("notify: dropped an oversized message ({} bytes) from pid {}", n, sender);
      continue;
    }
    auto parsed = parse_notify_message(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!parsed) {
      spdlog::debug("notify: dropped a message without assignments from pid {}", sender);
      continue;
    }
    if (sender <= 0) {
      spdlog::debug("notify: dropped a message without credentials");
      continue;
    }
    handler_(sender, *parsed);
  }
}

}  // namespace preforkd::daemon
