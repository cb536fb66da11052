// Setting a [[listen]] entry's options on its TCP sockets, each failure named after the
// option and its config key.

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <preforkd/os/socket_options.hpp>
#include <string>

namespace preforkd::os {
namespace {

// From <linux/in6.h> (Linux 4.15); spelled out so an older libc header set still builds.
constexpr int kIpv6Freebind = 78;  // IPV6_FREEBIND

// setsockopt of an int; the failure names the option.
std::optional<OptionFailure> set_int(int fd, int level, int name, int value, const char* option) {
  if (::setsockopt(fd, level, name, &value, sizeof value) == 0) return std::nullopt;
  return OptionFailure{option, errno};
}

int whole_seconds(Duration d) {
  return static_cast<int>(d.count() / 1000);
}

// SO_RCVBUF/SO_SNDBUF: the kernel doubles the value and caps it at net.core.[rw]mem_max.
// When it was capped, SO_*BUFFORCE goes past the cap where the master has CAP_NET_ADMIN;
// without it (EPERM) the capped size stays, as with systemd's ReceiveBuffer=.
std::optional<OptionFailure> set_buffer(int fd, int name, int force, int bytes, const char* option) {
  if (bytes <= 0) return std::nullopt;
  if (auto failed = set_int(fd, SOL_SOCKET, name, bytes, option)) return failed;
  int got = 0;
  socklen_t len = sizeof got;
  if (::getsockopt(fd, SOL_SOCKET, name, &got, &len) != 0) return OptionFailure{option, errno};
  if (got / 2 >= bytes) return std::nullopt;
  if (::setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) == 0 || errno == EPERM) return std::nullopt;
  return OptionFailure{option, errno};
}

std::optional<OptionFailure> set_free_bind(const ListenConfig& l, int fd) {
  if (l.address.family == AddressFamily::ipv6)
    return set_int(fd, IPPROTO_IPV6, kIpv6Freebind, l.free_bind ? 1 : 0, "IPV6_FREEBIND (free_bind)");
  return set_int(fd, IPPROTO_IP, IP_FREEBIND, l.free_bind ? 1 : 0, "IP_FREEBIND (free_bind)");
}

}  // namespace

std::optional<OptionFailure> apply_bind_options(const ListenConfig& l, int fd) {
  if (l.address.family == AddressFamily::ipv6 && l.bind_ipv6_only != BindIpv6Only::system_default) {
    const int only = l.bind_ipv6_only == BindIpv6Only::ipv6_only ? 1 : 0;
    if (auto failed = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, only, "IPV6_V6ONLY (bind_ipv6_only)")) return failed;
  }
  if (l.free_bind) {
    if (auto failed = set_free_bind(l, fd)) return failed;
  }
  if (!l.bind_to_device.empty() && ::setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, l.bind_to_device.c_str(),
                                                static_cast<socklen_t>(l.bind_to_device.size() + 1)) != 0)
    return OptionFailure{"SO_BINDTODEVICE (bind_to_device)", errno};
  return std::nullopt;
}

std::optional<OptionFailure> apply_listen_options(const ListenConfig& l, int fd) {
  if (auto failed =
          set_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, defer_accept_seconds(l), "TCP_DEFER_ACCEPT (defer_accept)"))
    return failed;
  if (auto failed = set_int(fd, IPPROTO_TCP, TCP_FASTOPEN, l.fastopen, "TCP_FASTOPEN (fastopen)")) return failed;
  if (auto failed = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, l.keep_alive ? 1 : 0, "SO_KEEPALIVE (keep_alive)"))
    return failed;
  if (l.keep_alive_time > Duration::zero()) {
    if (auto failed =
            set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, whole_seconds(l.keep_alive_time), "TCP_KEEPIDLE (keep_alive_time)"))
      return failed;
  }
  if (l.keep_alive_interval > Duration::zero()) {
    if (auto failed = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, whole_seconds(l.keep_alive_interval),
                              "TCP_KEEPINTVL (keep_alive_interval)"))
      return failed;
  }
  if (l.keep_alive_probes > 0) {
    if (auto failed = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, l.keep_alive_probes, "TCP_KEEPCNT (keep_alive_probes)"))
      return failed;
  }
  if (auto failed = set_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE, l.receive_buffer, "SO_RCVBUF (receive_buffer)"))
    return failed;
  if (auto failed = set_buffer(fd, SO_SNDBUF, SO_SNDBUFFORCE, l.send_buffer, "SO_SNDBUF (send_buffer)")) return failed;
  return set_int(fd, IPPROTO_TCP, TCP_NODELAY, l.no_delay ? 1 : 0, "TCP_NODELAY (no_delay)");
}

std::optional<OptionFailure> apply_held_options(const ListenConfig& l, int fd) {
  if (auto failed = set_free_bind(l, fd)) return failed;
  return apply_listen_options(l, fd);
}

std::optional<OptionFailure> set_blocking_mode(const ListenConfig& l, int fd) {
  const char* option = "O_NONBLOCK (non_blocking)";
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return OptionFailure{option, errno};
  const int wanted = l.non_blocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0) return OptionFailure{option, errno};
  return std::nullopt;
}

std::optional<std::string> held_socket_refusal(const ListenConfig& before, const ListenConfig& after) {
  // The flag belongs to the open file, which the running workers share with the master and
  // a reload keeps: flipping it would change their accept() under them.
  if (before.non_blocking != after.non_blocking)
    return "non_blocking cannot change on a socket the running workers share (O_NONBLOCK belongs to the open file)";
  if (before.bind_ipv6_only != after.bind_ipv6_only) return "bind_ipv6_only cannot change on a bound socket";
  if (before.bind_to_device != after.bind_to_device) return "bind_to_device cannot change on a bound socket";
  // setsockopt has no value that means "the kernel's default" for these.
  const auto unset = [](const char* key) {
    return std::string(key) + " cannot go back to the kernel's default on a held socket";
  };
  if (before.keep_alive_time > Duration::zero() && after.keep_alive_time == Duration::zero())
    return unset("keep_alive_time");
  if (before.keep_alive_interval > Duration::zero() && after.keep_alive_interval == Duration::zero())
    return unset("keep_alive_interval");
  if (before.keep_alive_probes > 0 && after.keep_alive_probes == 0) return unset("keep_alive_probes");
  if (before.receive_buffer > 0 && after.receive_buffer == 0) return unset("receive_buffer");
  if (before.send_buffer > 0 && after.send_buffer == 0) return unset("send_buffer");
  return std::nullopt;
}

}  // namespace preforkd::os
