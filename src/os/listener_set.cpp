// The listening sockets the master holds: binding them, and adding and removing per-slot
// sockets at the end of each SO_REUSEPORT group. One socket is made in listener_socket.cpp;
// steering new connections among the slots is listener_steering.cpp; the fd store's
// sockets are taken back in listener_inherited.cpp.

#include <preforkd/os/listener_set.hpp>

#include "listener_error.hpp"
#include "listener_socket.hpp"

#include <preforkd/os/socket_options.hpp>
#include <preforkd/os/sys_error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <string>
#include <utility>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace preforkd::os {

using namespace listener_socket;

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
    l.per_slot = has_per_slot_sockets(config);
    if (Status st = set.bind_listener(l, slots, {}); !st) return Error{st.error()};
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
  set.pack_ = previous.pack_;
  set.listeners_.reserve(listeners.size());
  std::vector<Listener*> kept_from(listeners.size(), nullptr);
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const ListenConfig& config = listeners[i];
    Listener& l = set.listeners_.emplace_back();
    l.config = config;
    l.per_slot = has_per_slot_sockets(config);
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
    // The port the group actually has (it may have been chosen by the kernel).
    auto sa = l.fds.empty() ? resolve(l.config) : bound_address(l.config, l.fds.front().get());
    if (!sa) {
      failed = Error{sa.error()};
      break;
    }
    failed = open_group_members(l.config, *sa, slots - slots_, added[i]);
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
