#pragma once
// Is a worker waiting for connections on its own listening sockets? (ready = "accepting")
// Read from /proc without the worker's help, over the worker's whole tree (the worker and
// everything it forked: nginx's and gunicorn's workers are children of their master):
//   - a thread blocked in accept/accept4 whose fd is one of the sockets (the fd's
//     "socket:[<ino>]" link against the inodes of the master's own sockets), or
//   - one of the sockets in the interest list of an epoll instance with EPOLLIN
//     (os/epoll_interest.hpp): an event loop that will accept once a connection comes.
// poll() and select() cannot be seen (their fd lists are in the process's memory): a
// server that waits on its socket only that way is never found waiting.

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

struct AcceptWait {
  enum class How { accept_call, epoll_set };
  How how = How::accept_call;
  pid_t pid = 0;  // the process of the tree that waits
  int fd = -1;    // accept_call: the fd it accepts on
  // "blocked in accept() on fd 3" / "its socket is in an epoll set", for the log.
  [[nodiscard]] std::string describe() const;
};

// How the tree rooted at `root` waits on one of `sockets` (socket inodes), or nullopt when
// no process of it is seen doing so (or the tree is gone).
[[nodiscard]] std::optional<AcceptWait> find_accept_wait(pid_t root, const std::vector<ino_t>& sockets);

}  // namespace preforkd::os
