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
//
// "Blocked in accept() on one of the sockets" is one rule, waits_in_accept(), which the
// balancer's and the stall watch's samples (os/worker_activity.hpp) apply too. The two
// questions differ beyond it, on purpose: readiness asks "has the tree reached its accept
// loop?" (any process of the tree; an epoll set holding the socket counts, since an idle
// loop's epoll_wait does not say on which fds), the samples ask "is a leaf idle right now?"
// (any thread of a leaf in a poll-family syscall counts, a stopped thread does not).

#include <preforkd/core/result.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

// What one thread's /proc/<tid>/syscall line says.
struct SyscallState {
  enum class Kind { running, accepting, polling, other };
  Kind kind = Kind::other;
  int fd = -1;  // accepting: the fd passed to accept
};
// Parses "43 0x3 0x0 ..." or "running" (exposed for tests); nullopt for anything else.
[[nodiscard]] std::optional<SyscallState> parse_syscall_line(std::string_view text);

// The inode of the socket that `pid`'s fd `fd` is ("socket:[12345]"), else 0.
[[nodiscard]] ino_t socket_inode_of(pid_t pid, int fd);

// The rule: a thread waits in accept() on one of `sockets` when it is blocked in accept or
// accept4 on an fd whose socket inode (`inode_of(fd)`: socket_inode_of, or a cache of it)
// is one of them. accept() on another socket is not waiting for our connections.
template <class InodeOf>
[[nodiscard]] bool waits_in_accept(const SyscallState& state, const std::vector<ino_t>& sockets, InodeOf&& inode_of) {
  if (state.kind != SyscallState::Kind::accepting) return false;
  const ino_t ino = inode_of(state.fd);
  return ino != 0 && std::find(sockets.begin(), sockets.end(), ino) != sockets.end();
}

struct AcceptWait {
  enum class How { accept_call, epoll_set };
  How how = How::accept_call;
  pid_t pid = 0;  // the process of the tree that waits
  int fd = -1;    // accept_call: the fd it accepts on
  // "blocked in accept() on fd 3" / "its socket is in an epoll set", for the log.
  [[nodiscard]] std::string describe() const;
};

// Whether this process may read what find_accept_wait() reads of `pid` (its
// /proc/<pid>/syscall, behind the kernel's ptrace access check): an error naming the file
// and the errno when it may not (EACCES, EPERM: a worker that runs as another user, and no
// CAP_SYS_PTRACE, as in a container's default capabilities), else Ok (a process that is
// gone is no such problem).
[[nodiscard]] Status can_look_into(pid_t pid);

// How the tree rooted at `root` waits on one of `sockets` (socket inodes), or nullopt when
// no process of it is seen doing so (or the tree is gone).
[[nodiscard]] std::optional<AcceptWait> find_accept_wait(pid_t root, const std::vector<ino_t>& sockets);

}  // namespace preforkd::os
