#include <preforkd/os/control_socket_file.hpp>

#include <preforkd/os/sys_error.hpp>
#include <preforkd/os/unix_socket.hpp>

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

// Makes the missing directories above the socket, so /run/preforkd need not exist.
Status make_parent_dirs(const std::string& path, mode_t mode, std::optional<gid_t> group) {
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), mode) == 0) {
      // mkdir's mode went through the umask; the group needs its x bit to reach the socket.
      if (::chmod(dir.c_str(), mode) != 0 || (group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0)) {
        return errno_error("set the mode or group of control socket directory", dir);
      }
    } else if (errno != EEXIST) {
      return errno_error("create control socket directory", dir);
    }
  }
  return Ok{};
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// An existing socket file is stale when connecting to it is refused: its master is gone.
Status clear_stale_socket(const std::string& path) {
  const auto existing = os::clear_stale_unix_socket(path);
  if (!existing) return Error{"control socket: " + existing.error()};
  switch (*existing) {
    case os::SocketFile::absent: return Ok{};
    case os::SocketFile::live: return Error{"control socket '" + path + "' is in use by a running preforkd"};
    case os::SocketFile::not_a_socket:
      return Error{"control socket '" + path + "' exists and is not a socket; remove it or set control_socket"};
  }
  return Ok{};
}

}  // namespace

Result<ControlSocketFile> bind_control_socket(const std::string& path, mode_t mode, std::optional<gid_t> group) {
  if (path.empty() || path.front() != '/') return Error{"control socket '" + path + "': must be an absolute path"};
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error{"control socket '" + path + "': the path is longer than " +
                 std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes"};
  }
  if (auto ok = make_parent_dirs(path, group ? 0750 : 0755, group); !ok) return Error{ok.error()};
  if (auto ok = clear_stale_socket(path); !ok) return Error{ok.error()};

  ControlSocketFile bound;
  bound.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!bound.fd.valid()) return errno_error("create a socket for control socket", path);
  const sockaddr_un addr = unix_address(path);
  // The file is born 0600 so that nobody else can connect before chmod and chown below.
  // The master has one thread, so the process-wide umask is ours for these two calls.
  const mode_t old_umask = ::umask(0177);
  const int rc = ::bind(bound.fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::umask(old_umask);
  if (rc != 0) {
    if (err == EADDRINUSE) return Error{"control socket '" + path + "' is in use by a running preforkd"};
    return errno_error("bind control socket", path, err);
  }
  struct stat st {};
  if (::chmod(path.c_str(), mode) != 0 || (group && ::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) ||
      ::lstat(path.c_str(), &st) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return errno_error("set the mode or group of control socket", path, e);
  }
  bound.dev = st.st_dev;
  bound.ino = st.st_ino;
  return bound;
}

}  // namespace preforkd::os
