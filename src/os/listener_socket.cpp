// Making one listening socket from a listener's config: resolving its address, refusing
// one that another socket holds, setting its options, binding and listening. ListenerSet
// (listener_set.cpp) holds what this makes.

#include "listener_socket.hpp"

#include "listener_error.hpp"

#include <preforkd/os/port_holder.hpp>
#include <preforkd/os/sys_error.hpp>
#include <preforkd/os/unix_socket.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include <netdb.h>
#include <sys/un.h>

namespace preforkd::os {
namespace listener_socket {
namespace {

// "address already in use by pid 1234 (nginx)", with as much as /proc shows; with no
// listener, the TIME_WAIT connections on `endpoint` when they are the cause.
std::string in_use_text(const std::vector<std::uint64_t>& inodes, const std::optional<TcpEndpoint>& endpoint) {
  const std::string base = "address already in use";
  if (inodes.empty()) {
    const auto cause = endpoint ? time_wait_cause(address_use_now(*endpoint)) : std::nullopt;
    return cause ? base + " by " + *cause : base;
  }
  const auto holders = socket_holders(inodes);
  if (holders.empty()) return base + " by a process this user cannot see in /proc";
  return base + " by " + describe_holders(holders);
}

// The type flags of a new listening socket: closed at a worker's exec (spawn dup2s it to
// fd 3 and up), and blocking unless non_blocking says otherwise, as systemd hands it. The
// master never relies on the flag: daemon/fail_fast checks readiness before it accepts.
int socket_type(const ListenConfig& l) { return SOCK_STREAM | SOCK_CLOEXEC | (l.non_blocking ? SOCK_NONBLOCK : 0); }

}  // namespace

bool has_per_slot_sockets(const ListenConfig& l) {
  return l.mode == ListenMode::reuseport && l.address.family != AddressFamily::unix_path;
}

std::string display(const Address& a) {
  if (!a.text.empty()) return a.text;
  switch (a.family) {
    case AddressFamily::ipv4:
      return a.host + ":" + std::to_string(a.port);
    case AddressFamily::ipv6:
      return "[" + a.host + "]:" + std::to_string(a.port);
    case AddressFamily::unix_path:
      return "unix:" + a.path;
  }
  return a.path;
}

Result<SockAddr> resolve(const ListenConfig& l) {
  SockAddr sa;
  const Address& a = l.address;
  if (a.family == AddressFamily::unix_path) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (a.path.empty() || a.path.size() >= sizeof un.sun_path) {
      return failure(
          l, "invalid address",
          "a unix socket path must be 1 to " + std::to_string(sizeof un.sun_path - 1) + " bytes long");
    }
    std::memcpy(un.sun_path, a.path.data(), a.path.size());
    std::memcpy(&sa.storage, &un, sizeof un);
    sa.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.path.size() + 1);
    return sa;
  }
  std::string host = a.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  // Numeric only: no DNS at start-up. getaddrinfo also handles IPv6 scope ids ("fe80::1%eth0").
  addrinfo hints{};
  hints.ai_family = a.family == AddressFamily::ipv6 ? AF_INET6 : AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(a.port);
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) return failure(l, "invalid address", sentence_tail(::gai_strerror(rc)));
  std::memcpy(&sa.storage, found->ai_addr, found->ai_addrlen);
  sa.len = found->ai_addrlen;
  ::freeaddrinfo(found);
  return sa;
}

Result<SockAddr> bound_address(const ListenConfig& l, int fd) {
  SockAddr sa;
  sa.len = sizeof sa.storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa.storage), &sa.len) != 0)
    return errno_failure(l, "failed to read the bound address of", errno);
  return sa;
}

// Refuses an address that another socket already listens on. Without this, a reuseport
// listener would silently join the group of whoever bound the port with SO_REUSEPORT
// first (another preforkd, any process of the same user) and take a share of its
// traffic. A probe bind without SO_REUSEPORT asks the kernel; /proc names the holder.
// `own` are the inodes of this master's sockets, which are not "another socket" (a
// reload that adds 0.0.0.0:80 while holding 127.0.0.1:80).
Status check_port_free(const ListenConfig& l, const SockAddr& sa, const std::vector<std::uint64_t>& own) {
  if (l.address.port == 0) return Ok{};  // the kernel picks a free port
  int err = 0;
  switch (probe_bind(sa.get(), sa.len, &err)) {
    case ProbeResult::free:
      return Ok{};
    case ProbeResult::failed:
      return errno_failure(l, "failed to bind", err);
    case ProbeResult::in_use:
      break;
  }
  const auto endpoint = endpoint_of(sa.get());
  std::vector<std::uint64_t> others = endpoint ? listening_inodes(*endpoint) : std::vector<std::uint64_t>{};
  const std::size_t seen = others.size();
  std::erase_if(others, [&](std::uint64_t inode) { return std::ranges::find(own, inode) != own.end(); });
  if (seen > 0 && others.empty()) return Ok{};  // only our own sockets overlap it
  return failure(l, "failed to bind", in_use_text(others, endpoint));
}

Error option_failure(const ListenConfig& l, const OptionFailure& f) {
  return errno_failure(l, "failed to set " + f.option + " on", f.err);
}

Result<Fd> open_ip_socket(const ListenConfig& l, const SockAddr& sa, Sharing sharing) {
  Fd fd(::socket(sa.family(), socket_type(l), 0));
  if (!fd.valid()) return errno_failure(l, "failed to create a socket for", errno);
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    return errno_failure(l, "failed to set SO_REUSEADDR on", errno);
  }
  if (sharing == Sharing::per_slot &&
      ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    return errno_failure(l, "failed to set SO_REUSEPORT on", errno);
  }
  // "[::]:80" means IPv6 only (unless bind_ipv6_only says otherwise), so that "0.0.0.0:80"
  // can be a listener of its own.
  if (auto failed = apply_bind_options(l, fd.get())) return option_failure(l, *failed);
  if (::bind(fd.get(), sa.get(), sa.len) != 0) {
    const int err = errno;
    const auto endpoint = endpoint_of(sa.get());
    if (err == EADDRINUSE && endpoint)
      return failure(l, "failed to bind", in_use_text(listening_inodes(*endpoint), endpoint));
    return errno_failure(l, "failed to bind", err);
  }
  if (auto failed = apply_listen_options(l, fd.get())) return option_failure(l, *failed);
  // A TCP socket joins its SO_REUSEPORT group here, so listen order is group order.
  if (::listen(fd.get(), l.backlog) != 0) return errno_failure(l, "failed to listen on", errno);
  return fd;
}

// Appends `count` group members. With port 0 the first socket picks the port and the
// others bind to it, so they still form one group.
Status open_group_members(const ListenConfig& l, SockAddr sa, int count, std::vector<Fd>& out) {
  for (int i = 0; i < count; ++i) {
    auto fd = open_ip_socket(l, sa, Sharing::per_slot);
    if (!fd) return Error{fd.error()};
    auto bound = bound_address(l, fd->get());
    if (!bound) return Error{bound.error()};
    sa = *bound;
    out.push_back(std::move(*fd));
  }
  return Ok{};
}

// Closes the highest slots first. Removing a whole suffix of a group leaves the index of
// every remaining socket as it was; closing in the middle would not.
void close_from_back(std::vector<Fd>& fds, std::size_t keep) {
  while (fds.size() > keep) fds.pop_back();
}

// Binds a unix socket, replacing a stale socket file (one nobody listens on) but never
// a live server's socket or a file that is not a socket.
Result<Fd> open_unix_socket(const ListenConfig& l, const SockAddr& sa, std::string* owned_path,
                            struct stat* owned) {
  const std::string& path = l.address.path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    const auto existing = clear_stale_unix_socket(path);
    if (!existing) return failure(l, "failed to bind", existing.error());
    if (*existing == SocketFile::not_a_socket)
      return failure(l, "failed to bind", "the path exists and is not a socket, refusing to remove it");
    if (*existing == SocketFile::live) return failure(l, "failed to bind", "address in use by a live server");
  } else if (errno != ENOENT) {
    return errno_failure(l, "failed to inspect", errno);
  }
  Fd fd(::socket(AF_UNIX, socket_type(l), 0));
  if (!fd.valid()) return errno_failure(l, "failed to create a socket for", errno);
  if (::bind(fd.get(), sa.get(), sa.len) != 0) return errno_failure(l, "failed to bind", errno);
  // Ours from here on (the caller unlinks it if anything later fails).
  if (::lstat(path.c_str(), owned) == 0) *owned_path = path;
  if (::listen(fd.get(), l.backlog) != 0) return errno_failure(l, "failed to listen on", errno);
  return fd;
}

}  // namespace listener_socket

// "listener 'http': failed to bind '127.0.0.1:80': permission denied"
Error failure(const ListenConfig& l, const std::string& what, const std::string& why) {
  return Error{"listener '" + l.name + "': " + what + " '" + listener_socket::display(l.address) + "': " + why};
}

Error errno_failure(const ListenConfig& l, const std::string& what, int err) {
  return failure(l, what, errno_text(err));
}

}  // namespace preforkd::os
