#pragma once
// The fds a process holds and what each one is, in words: for the fds the master finds
// open at start (passed in LISTEN_FDS or left over by whoever started it), so that a
// message about them says what they were.

#include <string>
#include <vector>

namespace preforkd::os {

// The fds of this process from `first` on, ascending (from /proc/self/fd, without the
// fd that reads it).
[[nodiscard]] std::vector<int> open_fds_from(int first);

// What `fd` is: "TCP socket listening on 127.0.0.1:8080", "unix socket listening on
// /run/app.sock", "UDP socket bound to 0.0.0.0:53", "TCP socket connected to
// 127.0.0.1:5432", "not a socket: /dev/null", "not open".
[[nodiscard]] std::string describe_fd(int fd);

}  // namespace preforkd::os
