#pragma once
// Which files are in the epoll sets of a process: read from /proc without its help.
// /proc/<pid>/fd/<n> links to "anon_inode:[eventpoll]" for an epoll instance, and
// /proc/<pid>/fdinfo/<n> then has one line per file in its interest list:
//   tfd:        3 events:       19 data:                3  pos:0 ino:f0a2e1 sdev:9
// tfd is the fd the file was added under, events the interest mask (hex), ino the file's
// inode (hex): for a socket, the number in its "socket:[<ino>]" link.

#include <cstdint>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

// One "tfd:" line of an epoll instance's fdinfo.
struct EpollEntry {
  int fd = -1;
  std::uint32_t events = 0;  // EPOLLIN, EPOLLEXCLUSIVE, ... as registered
  std::uint64_t inode = 0;
  bool operator==(const EpollEntry&) const = default;
};

// Every "tfd:" line of an fdinfo text, in order; other lines (pos, flags, mnt_id, ino)
// and malformed tfd lines are skipped.
[[nodiscard]] std::vector<EpollEntry> parse_epoll_fdinfo(std::string_view text);

// The inodes of the files that process `pid` waits for input on through epoll: in the
// interest list of one of its epoll instances with EPOLLIN set (a file registered with
// EPOLLIN cleared is not being waited on). Empty when the process is gone or cannot be
// read. At most `max_fds` of its fds are looked at.
[[nodiscard]] std::vector<std::uint64_t> epoll_input_inodes(pid_t pid, std::size_t max_fds = 4096);

}  // namespace preforkd::os
