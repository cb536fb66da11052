// Listing this process's fds and saying what each one is.

#include <preforkd/os/open_fds.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <string_view>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

// Where /proc cannot be read: probe this many fds.
constexpr int probed_fds = 4096;

int int_option(int fd, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  return ::getsockopt(fd, SOL_SOCKET, name, &value, &len) == 0 ? value : -1;
}

std::string address_text(const sockaddr_storage& ss, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
    return std::string(host).append(":").append(std::to_string(ntohs(in.sin_port)));
  }
  if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    return std::string("[").append(host).append("]:").append(std::to_string(ntohs(in6.sin6_port)));
  }
  if (ss.ss_family == AF_UNIX) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(ss);
    constexpr std::size_t path_offset = offsetof(sockaddr_un, sun_path);
    const std::size_t path_len = len > path_offset ? static_cast<std::size_t>(len) - path_offset : 0;
    if (path_len == 0) return "";
    if (un.sun_path[0] == '\0') return std::string("@").append(un.sun_path + 1, path_len - 1);  // abstract
    return std::string(un.sun_path, strnlen(un.sun_path, path_len));
  }
  return "";
}

std::string describe_socket(int fd) {
  const int domain = int_option(fd, SO_DOMAIN);
  const int type = int_option(fd, SO_TYPE);
  std::string kind;
  if (domain == AF_INET || domain == AF_INET6) {
    kind = type == SOCK_STREAM ? "TCP socket" : type == SOCK_DGRAM ? "UDP socket" : "IP socket";
  } else if (domain == AF_UNIX) {
    kind = type == SOCK_STREAM ? "unix socket" : type == SOCK_DGRAM ? "unix datagram socket" : "unix seqpacket socket";
  } else {
    return std::string("socket of family ").append(std::to_string(domain));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const std::string local = ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 ? address_text(ss, len) : "";
  if (int_option(fd, SO_ACCEPTCONN) == 1) return kind + " listening on " + (local.empty() ? "an unnamed address" : local);
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) {
    const std::string remote = address_text(peer, peer_len);
    return kind + " connected to " + (remote.empty() ? "an unnamed peer" : remote);
  }
  const bool bound = !local.empty() && !local.ends_with(":0");
  return bound ? kind + " bound to " + local : kind + ", not bound";
}

}  // namespace

std::vector<int> open_fds_from(int first) {
  std::vector<int> out;
  if (DIR* dir = ::opendir("/proc/self/fd"); dir != nullptr) {
    const int own = ::dirfd(dir);
    while (const dirent* e = ::readdir(dir)) {
      const std::string_view name(e->d_name);
      int fd = -1;
      const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
      if (ec != std::errc{} || end != name.data() + name.size() || fd < first || fd == own) continue;
      out.push_back(fd);
    }
    ::closedir(dir);
    std::ranges::sort(out);
    return out;
  }
  for (int fd = first; fd < probed_fds; ++fd)
    if (::fcntl(fd, F_GETFD) >= 0) out.push_back(fd);
  return out;
}

std::string describe_fd(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "not open";
  if (S_ISSOCK(st.st_mode)) return describe_socket(fd);
  char target[4096];
  const std::string link = std::string("/proc/self/fd/").append(std::to_string(fd));
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n > 0) return std::string("not a socket: ").append(target, static_cast<std::size_t>(n));
  return S_ISFIFO(st.st_mode) ? "not a socket: a pipe" : S_ISDIR(st.st_mode) ? "not a socket: a directory" : "not a socket";
}

}  // namespace preforkd::os
