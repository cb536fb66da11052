// An epoll instance of one's own watching a shared file for input (see the header).

#include <preforkd/os/input_watch.hpp>

#include <preforkd/os/sys_error.hpp>

#include <poll.h>
#include <sys/epoll.h>

#include <cerrno>
#include <string>

namespace preforkd::os {

Result<InputWatch> InputWatch::open(int fd) {
  InputWatch w;
  w.epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!w.epoll_.valid()) return errno_error("create an epoll instance to watch", "fd " + std::to_string(fd));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (::epoll_ctl(w.epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    return errno_error("add to an epoll instance", "fd " + std::to_string(fd));
  return w;
}

Result<bool> input_waiting(int fd) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    const int n = ::poll(&p, 1, 0);
    if (n >= 0) return n == 1 && (p.revents & POLLIN) != 0;
    if (errno != EINTR) return errno_error("poll", "fd " + std::to_string(fd));
  }
}

}  // namespace preforkd::os
