// Accept-and-reset on a held listening socket, without blocking and without leaving the
// shared file's flags changed.

#include <preforkd/os/connection_reset.hpp>

#include <preforkd/os/sys_error.hpp>

#include <fcntl.h>
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

Result<int> file_status_flags(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return errno_error("read the flags of", fd_text(fd));
  return flags;
}

Status set_file_status_flags(int fd, int flags) {
  if (::fcntl(fd, F_SETFL, flags) != 0) return errno_error("set the flags of", fd_text(fd));
  return Ok{};
}

Result<ResetCount> reset_waiting_connections(int fd, int max) {
  auto flags = file_status_flags(fd);
  if (!flags) return Error{flags.error()};
  const bool was_blocking = (*flags & O_NONBLOCK) == 0;
  if (was_blocking) {
    if (Status s = set_file_status_flags(fd, *flags | O_NONBLOCK); !s) return Error{s.error()};
  }
  ResetCount count;
  int failure = 0;
  while (count.reset < max) {
    const int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn >= 0) {
      close_with_reset(conn);
      ++count.reset;
      continue;
    }
    // The client gave up before it was accepted: nothing to reset, go on.
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      count.drained = true;
    } else {
      failure = errno;
    }
    break;
  }
  if (was_blocking) {
    if (Status s = set_file_status_flags(fd, *flags); !s) return Error{s.error()};
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
