// systemd's fd store: checking that a socket taken back from it is the one a listener asks
// for, and building the set from such sockets (binding what is missing).

#include <preforkd/os/listener_set.hpp>

#include "listener_error.hpp"
#include "listener_socket.hpp"

#include <preforkd/os/socket_options.hpp>
#include <preforkd/os/sys_error.hpp>

#include <cerrno>
#include <cstring>
#include <string>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

namespace preforkd::os {

using namespace listener_socket;

namespace {

std::string sockaddr_text(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
    std::string text(host);
    text.append(":").append(std::to_string(ntohs(in.sin_port)));
    return text;
  }
  if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    std::string text("[");
    text.append(host).append("]:").append(std::to_string(ntohs(in6.sin6_port)));
    return text;
  }
  std::string text(ss.ss_family == AF_UNIX ? "unix:" : "an address of family ");
  if (ss.ss_family == AF_UNIX) return text.append(reinterpret_cast<const sockaddr_un&>(ss).sun_path);
  return text.append(std::to_string(ss.ss_family));
}

bool same_address(const sockaddr_storage& got, const SockAddr& want, bool any_port) {
  if (got.ss_family != want.family()) return false;
  if (got.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(got);
    const auto& b = reinterpret_cast<const sockaddr_in&>(want.storage);
    return a.sin_addr.s_addr == b.sin_addr.s_addr && (any_port || a.sin_port == b.sin_port);
  }
  if (got.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(got);
    const auto& b = reinterpret_cast<const sockaddr_in6&>(want.storage);
    return std::memcmp(&a.sin6_addr, &b.sin6_addr, sizeof a.sin6_addr) == 0 && a.sin6_scope_id == b.sin6_scope_id &&
           (any_port || a.sin6_port == b.sin6_port);
  }
  return std::strncmp(reinterpret_cast<const sockaddr_un&>(got).sun_path,
                      reinterpret_cast<const sockaddr_un&>(want.storage).sun_path, sizeof(sockaddr_un::sun_path)) == 0;
}

int int_option(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, level, name, &value, &len) != 0) return -1;
  return value;
}

}  // namespace

std::optional<std::string> ListenerSet::inherited_mismatch(int fd, const ListenConfig& listener) {
  auto want = resolve(listener);
  if (!want) return want.error();
  if (int_option(fd, SOL_SOCKET, SO_TYPE) != SOCK_STREAM) return std::string("it is no stream socket");
  if (int_option(fd, SOL_SOCKET, SO_ACCEPTCONN) != 1) return std::string("it is not listening");
  sockaddr_storage got{};
  socklen_t len = sizeof got;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len) != 0)
    return std::string("failed to read its address: ").append(errno_text(errno));
  if (!same_address(got, *want, listener.address.port == 0))
    return std::string("it is bound to ").append(sockaddr_text(got)).append(", the config says ").append(display(listener.address));
  if (got.ss_family == AF_UNIX) return std::nullopt;
  const bool per_slot = listener.mode == ListenMode::reuseport;
  if ((int_option(fd, SOL_SOCKET, SO_REUSEPORT) == 1) != per_slot)
    return std::string(per_slot ? "it has no SO_REUSEPORT, the config says mode = \"reuseport\""
                                : "it has SO_REUSEPORT, the config says mode = \"shared\"");
  return std::nullopt;
}

Status ListenerSet::complete_listener(Listener& l, int slots, const std::vector<std::uint64_t>& own_inodes) {
  if (l.fds.empty()) return bind_listener(l, slots, own_inodes);
  if (!l.per_slot || static_cast<int>(l.fds.size()) >= slots) return Ok{};
  // The group's own address (its port may have been chosen by the kernel).
  auto sa = bound_address(l.config, l.fds.front().get());
  if (!sa) return Error{sa.error()};
  return open_group_members(l.config, *sa, slots - static_cast<int>(l.fds.size()), l.fds);
}

Result<ListenerSet> ListenerSet::take_inherited(const std::vector<ListenConfig>& listeners, int slots,
                                                const std::vector<std::vector<int>>& taken) {
  if (taken.size() != listeners.size())
    return Error{"listeners: " + std::to_string(taken.size()) + " taken socket lists for " +
                 std::to_string(listeners.size()) + " listeners"};
  ListenerSet set;
  set.configs_ = listeners;
  set.listeners_.reserve(listeners.size());
  // Every taken fd is owned by the set at once, so an early return closes them all.
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    Listener& l = set.listeners_.emplace_back();
    l.config = listeners[i];
    l.per_slot = has_per_slot_sockets(l.config);
    for (int fd : taken[i]) l.fds.emplace_back(fd);
  }
  for (Listener& l : set.listeners_) {
    for (const Fd& fd : l.fds) {
      // As the master's own sockets are: closed at a worker's exec, and blocking or not as
      // the config says (not as the previous master or systemd's NonBlocking= left it). No
      // worker holds it yet: the previous master's went with it.
      if (::fcntl(fd.get(), F_SETFD, FD_CLOEXEC) != 0)
        return errno_failure(l.config, "failed to set the flags of the stored socket of", errno);
      if (auto failed = set_blocking_mode(l.config, fd.get())) return option_failure(l.config, *failed);
      // The config's backlog and TCP options, which the store does not know.
      if (::listen(fd.get(), l.config.backlog) != 0)
        return errno_failure(l.config, "failed to listen on the stored socket of", errno);
      if (l.config.address.family != AddressFamily::unix_path) {
        if (auto failed = apply_listen_options(l.config, fd.get())) return option_failure(l.config, *failed);
        // As the master's own sockets have it: without it, the connections a socket
        // accepted keep the address in TIME_WAIT after it closes, and the next start
        // fails to bind it for 60 s.
        const int one = 1;
        if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
          return errno_failure(l.config, "failed to set SO_REUSEADDR on the stored socket of", errno);
      }
    }
    // The file of a stored unix socket is the one the previous master bound: ours to
    // unlink at stop, while it is still that file.
    struct stat st {};
    if (!l.fds.empty() && l.config.address.family == AddressFamily::unix_path &&
        ::lstat(l.config.address.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      l.socket_file.path = l.config.address.path;
      l.socket_file.dev = st.st_dev;
      l.socket_file.ino = st.st_ino;
      l.socket_file.owned = true;
    }
  }
  for (Listener& l : set.listeners_) {
    if (Status st = set.complete_listener(l, slots, set.socket_inodes()); !st) return Error{st.error()};
  }
  set.slots_ = slots;
  return set;
}

}  // namespace preforkd::os
