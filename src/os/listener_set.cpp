// The listening sockets the master holds: binding them, and adding and removing per-slot
// sockets at the end of each SO_REUSEPORT group. Steering new connections among the
// slots is listener_steering.cpp.

#include <preforkd/os/listener_set.hpp>

#include "listener_error.hpp"

#include <preforkd/os/port_holder.hpp>
#include <preforkd/os/socket_options.hpp>
#include <preforkd/os/sys_error.hpp>
#include <preforkd/os/unix_socket.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include <fcntl.h>
#include <linux/filter.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

namespace preforkd::os {
namespace {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  [[nodiscard]] int family() const { return storage.ss_family; }
};

// strerror text with a lowercase first letter, to read well after a colon.
std::string lowercase_first(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
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

}  // namespace

// "listener 'http': failed to bind '127.0.0.1:80': permission denied"
Error failure(const ListenConfig& l, const std::string& what, const std::string& why) {
  return Error{"listener '" + l.name + "': " + what + " '" + display(l.address) + "': " + why};
}

Error errno_failure(const ListenConfig& l, const std::string& what, int err) {
  return failure(l, what, errno_text(err));
}

namespace {

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
  if (rc != 0) return failure(l, "invalid address", lowercase_first(::gai_strerror(rc)));
  std::memcpy(&sa.storage, found->ai_addr, found->ai_addrlen);
  sa.len = found->ai_addrlen;
  ::freeaddrinfo(found);
  return sa;
}

enum class Sharing { per_slot, shared };

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

// The type flags of a new listening socket: closed at a worker's exec (spawn dup2s it to
// fd 3 and up), and blocking unless non_blocking says otherwise, as systemd hands it. The
// master never relies on the flag: daemon/fail_fast checks readiness before it accepts.
int socket_type(const ListenConfig& l) { return SOCK_STREAM | SOCK_CLOEXEC | (l.non_blocking ? SOCK_NONBLOCK : 0); }

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
    sa.len = sizeof sa.storage;
    if (::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&sa.storage), &sa.len) != 0) {
      return errno_failure(l, "failed to read the bound address of", errno);
    }
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

}  // namespace

ListenerSet::SocketFile::SocketFile(SocketFile&& o) noexcept
    : path(std::move(o.path)), dev(o.dev), ino(o.ino), owned(std::exchange(o.owned, false)) {}

ListenerSet::SocketFile& ListenerSet::SocketFile::operator=(SocketFile&& o) noexcept {
  if (this != &o) {
    remove();
    path = std::move(o.path);
    dev = o.dev;
    ino = o.ino;
    owned = std::exchange(o.owned, false);
  }
  return *this;
}

ListenerSet::SocketFile::~SocketFile() { remove(); }

void ListenerSet::SocketFile::remove() {
  if (!std::exchange(owned, false)) return;
  // Only while it is still the file we bound: a successor may have replaced it.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) ::unlink(path.c_str());
}

ListenerSet::~ListenerSet() = default;  // the members close the fds and unlink the files

Status ListenerSet::bind_listener(Listener& l, int slots, const std::vector<std::uint64_t>& own_inodes) {
  const ListenConfig& config = l.config;
  auto sa = resolve(config);
  if (!sa) return Error{sa.error()};
  if (config.address.family != AddressFamily::unix_path) {
    if (Status free = check_port_free(config, *sa, own_inodes); !free) return free;
  }
  if (l.per_slot) return open_group_members(config, *sa, slots, l.fds);
  if (config.address.family == AddressFamily::unix_path) {
    struct stat owned {};
    std::string owned_path;
    auto fd = open_unix_socket(config, *sa, &owned_path, &owned);
    if (!owned_path.empty()) {
      l.socket_file.path = owned_path;
      l.socket_file.dev = owned.st_dev;
      l.socket_file.ino = owned.st_ino;
      l.socket_file.owned = true;
    }
    if (!fd) return Error{fd.error()};
    l.fds.push_back(std::move(*fd));
    return Ok{};
  }
  auto fd = open_ip_socket(config, *sa, Sharing::shared);
  if (!fd) return Error{fd.error()};
  l.fds.push_back(std::move(*fd));
  return Ok{};
}

Result<ListenerSet> ListenerSet::open(const std::vector<ListenConfig>& listeners, int slots) {
  if (slots < 0) return Error{"listeners: the slot count must not be negative, got " + std::to_string(slots)};
  ListenerSet set;
  set.configs_ = listeners;
  set.listeners_.reserve(listeners.size());
  // Each listener joins `set` before its sockets open, so an early return closes (and
  // unlinks) everything opened so far.
  for (const ListenConfig& config : listeners) {
    Listener& l = set.listeners_.emplace_back();
    l.config = config;
    l.per_slot = config.mode == ListenMode::reuseport && config.address.family != AddressFamily::unix_path;
    if (Status st = set.bind_listener(l, slots, {}); !st) return Error{st.error()};
  }
  set.slots_ = slots;
  return set;
}

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
    return std::string("getsockname failed: ").append(errno_text(errno));
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
  SockAddr sa;
  sa.len = sizeof sa.storage;
  if (::getsockname(l.fds.front().get(), reinterpret_cast<sockaddr*>(&sa.storage), &sa.len) != 0)
    return errno_failure(l.config, "failed to read the bound address of", errno);
  return open_group_members(l.config, sa, slots - static_cast<int>(l.fds.size()), l.fds);
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
    l.per_slot = l.config.mode == ListenMode::reuseport && l.config.address.family != AddressFamily::unix_path;
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

namespace {

bool same_socket(const ListenConfig& a, const ListenConfig& b) {
  return a.address.family == b.address.family && a.address.host == b.address.host &&
         a.address.port == b.address.port && a.address.path == b.address.path;
}

}  // namespace

Result<ListenerSet> ListenerSet::reopen(const std::vector<ListenConfig>& listeners, ListenerSet& previous) {
  // What a held socket cannot take is refused before any socket changes.
  for (const ListenConfig& config : listeners) {
    auto old = std::ranges::find_if(previous.listeners_, [&](const Listener& p) { return same_socket(p.config, config); });
    if (old == previous.listeners_.end() || same_socket_options(config, old->config)) continue;
    if (auto refused = held_socket_refusal(old->config, config))
      return failure(config, "cannot change the options of", *refused + "; stop and start preforkd to do it");
  }
  ListenerSet set;
  set.configs_ = listeners;
  set.load_steering_ = previous.load_steering_;
  set.listeners_.reserve(listeners.size());
  std::vector<Listener*> kept_from(listeners.size(), nullptr);
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const ListenConfig& config = listeners[i];
    Listener& l = set.listeners_.emplace_back();
    l.config = config;
    l.per_slot = config.mode == ListenMode::reuseport && config.address.family != AddressFamily::unix_path;
    auto old = std::ranges::find_if(previous.listeners_, [&](const Listener& p) { return same_socket(p.config, config); });
    if (old == previous.listeners_.end()) {
      if (Status st = set.bind_listener(l, previous.slots_, previous.socket_inodes()); !st) return Error{st.error()};
      continue;
    }
    if (old->per_slot != l.per_slot)
      return failure(config, "cannot change the mode of", "stop and start preforkd to switch reuseport/shared");
    const bool options_changed = !same_socket_options(config, old->config);
    // The same kernel socket, through a second fd: its queue and group index stay as they are.
    for (const Fd& fd : old->fds) {
      Fd dup(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
      if (!dup.valid()) return errno_failure(config, "failed to duplicate the socket of", errno);
      if (config.backlog != old->config.backlog && ::listen(dup.get(), config.backlog) != 0)
        return errno_failure(config, "failed to change the backlog of", errno);
      if (options_changed) {
        if (auto failed = apply_held_options(config, dup.get())) return option_failure(config, *failed);
      }
      l.fds.push_back(std::move(dup));
    }
    kept_from[i] = &*old;
  }
  // Only now that nothing can fail: the unix socket files move to the new set.
  for (std::size_t i = 0; i < listeners.size(); ++i)
    if (kept_from[i] != nullptr) set.listeners_[i].socket_file = std::move(kept_from[i]->socket_file);
  set.slots_ = previous.slots_;
  return set;
}

Status ListenerSet::grow(int slots) {
  if (slots <= slots_) return Ok{};
  // Open everything first and commit only when all of it worked.
  std::vector<std::vector<Fd>> added(listeners_.size());
  Status failed = Ok{};
  for (std::size_t i = 0; i < listeners_.size() && failed; ++i) {
    Listener& l = listeners_[i];
    if (!l.per_slot) continue;
    SockAddr sa;
    if (!l.fds.empty()) {
      // The port the group actually has (it may have been chosen by the kernel).
      sa.len = sizeof sa.storage;
      if (::getsockname(l.fds.front().get(), reinterpret_cast<sockaddr*>(&sa.storage), &sa.len) != 0) {
        failed = errno_failure(l.config, "failed to read the bound address of", errno);
        break;
      }
    } else if (auto resolved = resolve(l.config); resolved) {
      sa = *resolved;
    } else {
      failed = Error{resolved.error()};
      break;
    }
    failed = open_group_members(l.config, sa, slots - slots_, added[i]);
  }
  if (!failed) {
    for (auto& fds : added) close_from_back(fds, 0);
    return failed;
  }
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    for (Fd& fd : added[i]) listeners_[i].fds.push_back(std::move(fd));
  }
  slots_ = slots;
  return Ok{};
}

void ListenerSet::shrink(int slots) {
  slots = std::max(slots, 0);
  if (slots >= slots_) return;
  for (Listener& l : listeners_) {
    if (l.per_slot) close_from_back(l.fds, static_cast<std::size_t>(slots));
  }
  slots_ = slots;
}

std::vector<int> ListenerSet::fds_for_slot(int slot) const {
  std::vector<int> fds;
  if (slot < 0 || slot >= slots_) return fds;  // no such slot
  fds.reserve(listeners_.size());
  for (const Listener& l : listeners_) {
    fds.push_back(l.per_slot ? l.fds[static_cast<std::size_t>(slot)].get() : l.fds.front().get());
  }
  return fds;
}

std::string ListenerSet::fd_names() const {
  std::string names;
  for (const ListenConfig& c : configs_) {
    if (!names.empty()) names += ':';
    names += c.name;
  }
  return names;
}

std::vector<std::uint64_t> ListenerSet::socket_inodes() const {
  std::vector<std::uint64_t> out;
  for (const Listener& l : listeners_) {
    for (const Fd& fd : l.fds) {
      struct stat st {};
      if (::fstat(fd.get(), &st) == 0) out.push_back(st.st_ino);
    }
  }
  return out;
}

std::vector<ino_t> ListenerSet::socket_inodes_for_slot(int slot) const {
  std::vector<ino_t> out;
  for (int fd : fds_for_slot(slot)) {
    struct stat st {};
    if (::fstat(fd, &st) == 0) out.push_back(st.st_ino);
  }
  return out;
}

int ListenerSet::balanced_queue_depth(int slot) const {
  int total = 0;
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    const Listener& l = listeners_[i];
    if (!l.per_slot || l.config.balance != ListenBalance::load) continue;
    total += std::max(accept_queue_depth(i, slot), 0);
  }
  return total;
}

int ListenerSet::accept_queue_depth(std::size_t listener, int slot) const {
  if (listener >= listeners_.size()) return -1;
  const Listener& l = listeners_[listener];
  if (l.config.address.family == AddressFamily::unix_path || l.fds.empty()) return -1;
  if (l.per_slot && (slot < 0 || static_cast<std::size_t>(slot) >= l.fds.size())) return -1;
  const int fd = l.per_slot ? l.fds[static_cast<std::size_t>(slot)].get() : l.fds.front().get();
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 || info.tcpi_state != TCP_LISTEN) return -1;
  // For a listening socket the kernel reports the accept queue length in tcpi_unacked
  // (and the backlog in tcpi_sacked).
  return static_cast<int>(info.tcpi_unacked);
}

}  // namespace preforkd::os
