#include <preforkd/os/unix_socket.hpp>

#include <preforkd/os/fd.hpp>
#include <preforkd/os/sys_error.hpp>

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace preforkd::os {

Result<SocketFile> clear_stale_unix_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return SocketFile::absent;
    return errno_error("inspect", path);
  }
  if (!S_ISSOCK(st.st_mode)) return SocketFile::not_a_socket;

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Error{failed_to("probe", path, "the path is too long for a unix socket")};
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return errno_error("create a socket to probe", path);
  // Non-blocking: a live server with a full backlog answers EAGAIN instead of stalling us.
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN ||
      errno == EINPROGRESS) {
    return SocketFile::live;
  }
  if (errno != ECONNREFUSED && errno != ENOENT) {
    return Error{failed_to("probe", path, "cannot tell whether the socket is stale: " + errno_text(errno))};
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_error("remove the stale socket", path);
  return SocketFile::absent;
}

}  // namespace preforkd::os
