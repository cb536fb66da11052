#pragma once
// Waiting for input on a file other processes share, without touching that file: an epoll
// instance of the caller's own with the file in its interest list (EPOLLIN, level
// triggered). The epoll fd is readable exactly while the file has input, so an event loop
// polls it instead of the file. libuv's uv_poll_init on the file itself would set
// O_NONBLOCK on it, and O_NONBLOCK belongs to the open file, which every process holding
// the socket shares (the workers).
//
// An interest list keys on the open file, not the fd number: a watched fd closed by its
// owner stays in it while another process keeps the file open. Closing the watch (its
// epoll instance) drops the interest whatever became of the fd.

#include <preforkd/core/result.hpp>
#include <preforkd/os/fd.hpp>

namespace preforkd::os {

class InputWatch {
 public:
  // A watch of `fd`; errors name epoll_create1 or epoll_ctl and the fd.
  [[nodiscard]] static Result<InputWatch> open(int fd);
  // The epoll instance's fd, readable while the watched file has input. Only the owner
  // of the watch holds it, so an event loop may make it non-blocking.
  [[nodiscard]] int fd() const { return epoll_.get(); }

 private:
  Fd epoll_;
};

// Whether `fd` has input waiting right now (poll with no timeout): for a listening socket,
// whether accept() would return at once. Never blocks, never changes the file's flags.
[[nodiscard]] Result<bool> input_waiting(int fd);

}  // namespace preforkd::os
