// The listening sockets across an in-place upgrade: the old image lists them (fds and the
// unix socket files it owns), the new image takes the same fds back. The kernel sockets,
// their accept queues, their reuseport group order and the BPF program attached to the
// group all stay as they were: nothing is bound or closed.

#include <preforkd/os/listener_set.hpp>

#include "listener_socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>

namespace preforkd::os {

std::vector<ListenerState> ListenerSet::handoff() const {
  std::vector<ListenerState> out;
  for (const Listener& l : listeners_) {
    ListenerState s;
    s.name = l.config.name;
    s.address = l.config.address.text;
    for (const Fd& fd : l.fds) s.fds.push_back(fd.get());
    if (l.socket_file.owned) {
      s.socket_path = l.socket_file.path;
      s.socket_dev = static_cast<std::uint64_t>(l.socket_file.dev);
      s.socket_ino = static_cast<std::uint64_t>(l.socket_file.ino);
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<ListenerSet> ListenerSet::adopt(const std::vector<ListenConfig>& listeners, int slots,
                                       const std::vector<ListenerState>& handed) {
  // The check the preflight makes on the same state, before any fd is taken.
  if (Status fits = check_handed_listeners(listeners, slots, handed); !fits) return Error{fits.error()};
  ListenerSet set;
  set.configs_ = listeners;
  set.slots_ = slots;
  // Every fd is owned by the set at once, so an early return closes them all.
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    Listener& l = set.listeners_.emplace_back();
    l.config = listeners[i];
    l.per_slot = listener_socket::has_per_slot_sockets(l.config);
    for (int fd : handed[i].fds) l.fds.emplace_back(fd);
    if (!handed[i].socket_path.empty()) {
      l.socket_file.path = handed[i].socket_path;
      l.socket_file.dev = static_cast<dev_t>(handed[i].socket_dev);
      l.socket_file.ino = static_cast<ino_t>(handed[i].socket_ino);
      l.socket_file.owned = true;
    }
  }
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const Listener& l = set.listeners_[i];
    for (const Fd& fd : l.fds) {
      int listening = 0;
      socklen_t len = sizeof listening;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0)
        return Error{"listener '" + l.config.name + "': fd " + std::to_string(fd.get()) + " is no listening socket"};
      // Ours again, and closed by the next exec of a worker.
      ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
    }
  }
  return set;
}

}  // namespace preforkd::os
