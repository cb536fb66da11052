// Accept-and-reset on a held listening socket, without blocking and without touching the
// shared file's flags.

#include <preforkd/os/connection_reset.hpp>

#include <preforkd/os/input_watch.hpp>
#include <preforkd/os/sys_error.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace preforkd::os {

namespace {

std::string fd_text(int fd) { return "fd " + std::to_string(fd); }

// Closes an accepted connection so that the kernel sends RST rather than FIN.
void close_with_reset(int conn) {
  const linger hard{1, 0};
  (void)::setsockopt(conn, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);  // closed either way
  ::close(conn);
}

}  // namespace

Result<ResetCount> reset_waiting_connections(int fd, int max) {
  ResetCount count;
  int failure = 0;
  while (count.reset < max) {
    // The socket may be blocking (the workers' default): accept only what is there.
    auto waiting = input_waiting(fd);
    if (!waiting) return Error{waiting.error()};
    if (!*waiting) {
      count.drained = true;
      break;
    }
    const int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn >= 0) {
      close_with_reset(conn);
      ++count.reset;
      continue;
    }
    // The client gave up before it was accepted: nothing to reset, go on.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    // Only when the socket is non-blocking and someone else took the connection.
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      count.drained = true;
    } else {
      failure = errno;
    }
    break;
  }
  if (failure != 0) count.error = errno_error("accept a connection to reset on", fd_text(fd), failure).message;
  return count;
}

ino_t socket_inode(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  return st.st_ino;
}

}  // namespace preforkd::os
