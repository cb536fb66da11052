#pragma once
// Refusing connections that wait on a held listening socket: accept each and close it
// with a reset (SO_LINGER 0), so the client sees ECONNRESET at once instead of waiting.
//
// The listening sockets' open files are shared with the workers (fork and dup share the
// file status flags), and a worker such as tests/fixtures/sync_worker clears O_NONBLOCK
// to block in accept(). So the master never leaves a flag changed: it sets O_NONBLOCK
// only while it accepts, and only on a socket no worker process holds at that moment
// (the caller's promise, see core/fail_fast_plan), so accept() cannot block the loop.

#include <preforkd/core/result.hpp>

#include <string>
#include <sys/types.h>

namespace preforkd::os {

struct ResetCount {
  int reset = 0;         // connections accepted and reset
  bool drained = false;  // the queue was empty at the end (accept said EAGAIN)
  std::string error;     // why accept stopped early, naming the call and the errno (EMFILE: no fd to accept into)
};

// Accepts and resets up to `max` waiting connections of listening socket `fd`. An error
// is returned only when the socket's flags cannot be read or set.
[[nodiscard]] Result<ResetCount> reset_waiting_connections(int fd, int max);

// The file status flags of `fd` (F_GETFL), and setting them back (F_SETFL): a libuv poll
// makes its fd non-blocking, which must not reach the workers sharing the file.
[[nodiscard]] Result<int> file_status_flags(int fd);
[[nodiscard]] Status set_file_status_flags(int fd, int flags);

// The inode of the socket `fd` refers to (0 on error): an fd number may be reused for
// another socket after a reload.
[[nodiscard]] ino_t socket_inode(int fd);

}  // namespace preforkd::os
