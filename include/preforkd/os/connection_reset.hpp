#pragma once
// Refusing connections that wait on a held listening socket: accept each and close it
// with a reset (SO_LINGER 0), so the client sees ECONNRESET at once instead of waiting.
//
// The listening sockets' open files are shared with the workers (fork and dup share the
// file status flags), and O_NONBLOCK is whatever the config and the workers made it: the
// master neither relies on it nor changes it. Before each accept it checks that a
// connection is waiting (os/input_watch.hpp's input_waiting), so accept() returns at once
// as long as nobody else takes that connection in between: the caller accepts only on a
// socket no worker process holds (core/fail_fast_plan), and the master is one thread.

#include <preforkd/core/result.hpp>

#include <string>
#include <sys/types.h>

namespace preforkd::os {

struct ResetCount {
  int reset = 0;         // connections accepted and reset
  bool drained = false;  // the queue was empty at the end
  std::string error;     // why accept stopped early, naming the call and the errno (EMFILE: no fd to accept into)
};

// Accepts and resets up to `max` waiting connections of listening socket `fd`, each after
// checking that one waits. An error is returned only when that check itself fails.
[[nodiscard]] Result<ResetCount> reset_waiting_connections(int fd, int max);

// The inode of the socket `fd` refers to (0 on error): an fd number may be reused for
// another socket after a reload.
[[nodiscard]] ino_t socket_inode(int fd);

}  // namespace preforkd::os
