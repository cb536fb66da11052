#pragma once
// Is a worker waiting for a connection? Read from /proc without the worker's help:
// a worker is waiting when some thread of a leaf process of its tree (a process with no
// children: gunicorn's worker, not its arbiter sitting in select() on a pipe) is blocked
// in accept/accept4 on one of the slot's listening sockets (os::waits_in_accept, the rule
// readiness applies too: os/accept_wait.hpp), or in an idle event loop
// (epoll_wait, epoll_pwait(2), poll, ppoll, select, pselect6). A thread that is running,
// stopped (SIGSTOP, ptrace) or blocked in anything else is busy.
//
// /proc/<tid>/syscall gives the syscall number and arguments of a blocked thread, or
// "running". The probe keeps those files open and preads them at offset 0, so a sample
// costs one pread per thread (plus a /proc/<tid>/stat read for a thread that looks
// waiting, to tell a stopped one apart; at most every 50 ms a thread). Which threads and processes make up a tree is
// cached until refresh().

#include <preforkd/core/balance_plan.hpp>
#include <preforkd/os/accept_wait.hpp>
#include <preforkd/os/fd.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

// The state letter of a /proc/<pid>/stat line ('R', 'S', 'T', ...), or 0.
[[nodiscard]] char parse_stat_state(std::string_view stat);

class ActivityProbe {
 public:
  // The activity of the tree rooted at `pid` (a worker of the master). `slot_sockets`
  // are the inodes of the slot's listening sockets (accept on another socket is busy).
  [[nodiscard]] Activity sample(pid_t pid, const std::vector<ino_t>& slot_sockets);
  // Forgets every cached tree: the next sample() lists threads and children anew
  // (a worker may have forked or started threads since).
  void refresh();
  // Drops what is cached for processes that are no longer workers.
  void forget_others(const std::vector<pid_t>& workers);

 private:
  struct Thread {
    pid_t tid = 0;
    Fd syscall;
    Fd stat;
    std::chrono::steady_clock::time_point stat_read{};  // when `stopped` was last read
    bool stopped = false;                                 // 'T' or 't' then
  };
  struct Leaf {
    pid_t pid = 0;
    std::vector<Thread> threads;
    std::map<int, ino_t> socket_of_fd;  // fd -> socket inode (0: not a socket)
  };
  struct Tree {
    std::vector<Leaf> leaves;
  };
  bool build(pid_t root, Tree& tree);
  std::vector<pid_t> children_of(pid_t pid);
  ino_t socket_inode(Leaf& leaf, int fd);

  std::map<pid_t, Tree> trees_;
  std::optional<std::multimap<pid_t, pid_t>> parents_;  // ppid -> pid, from one /proc scan per refresh
};

}  // namespace preforkd::os
