// Looks for a worker's tree waiting on its own sockets (see the header).

#include <preforkd/os/accept_wait.hpp>

#include <preforkd/os/epoll_interest.hpp>
#include <preforkd/os/fd.hpp>
#include <preforkd/os/process_tree.hpp>
#include <preforkd/os/sys_error.hpp>

#include "proc_fields.hpp"

#include <algorithm>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

// A fork bomb must not make one look unbounded.
constexpr std::size_t max_threads = 1024;

using proc_fields::numbered_entries;
using proc_fields::parse_number;
using proc_fields::words;

bool is_accept(long nr) {
#ifdef SYS_accept
  if (nr == SYS_accept) return true;
#endif
  return nr == SYS_accept4;
}

bool is_poll(long nr) {
  switch (nr) {
#ifdef SYS_epoll_wait
    case SYS_epoll_wait:
#endif
#ifdef SYS_poll
    case SYS_poll:
#endif
#ifdef SYS_select
    case SYS_select:
#endif
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2:
#endif
    case SYS_epoll_pwait:
    case SYS_ppoll:
    case SYS_pselect6:
      return true;
    default:
      return false;
  }
}

// The fd a thread of `pid` is blocked in accept() on, when it is one of `sockets`.
std::optional<int> accepting_fd(pid_t pid, const std::vector<ino_t>& sockets, std::size_t& budget) {
  for (pid_t tid : numbered_entries("/proc/" + std::to_string(pid) + "/task")) {
    if (budget == 0) return std::nullopt;
    --budget;
    const std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall";
    Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.valid()) continue;
    char buf[256];
    const ssize_t n = ::read(f.get(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    const auto state = parse_syscall_line(std::string_view(buf, static_cast<std::size_t>(n)));
    if (state && waits_in_accept(*state, sockets, [pid](int fd) { return socket_inode_of(pid, fd); })) return state->fd;
  }
  return std::nullopt;
}

}  // namespace

std::optional<SyscallState> parse_syscall_line(std::string_view text) {
  const auto w = words(text);
  if (w.empty()) return std::nullopt;
  if (w[0] == "running") return SyscallState{SyscallState::Kind::running, -1};
  long nr = 0;
  // "-1 0x... 0x...": blocked outside a syscall (e.g. a page fault)
  if (!parse_number(w[0], nr, 10)) return std::nullopt;
  if (is_accept(nr)) {
    unsigned long fd = 0;
    if (w.size() < 2 || !parse_number(w[1], fd, 16)) return std::nullopt;
    return SyscallState{SyscallState::Kind::accepting, static_cast<int>(fd)};
  }
  if (is_poll(nr)) return SyscallState{SyscallState::Kind::polling, -1};
  return SyscallState{SyscallState::Kind::other, -1};
}

ino_t socket_inode_of(pid_t pid, int fd) {
  char target[64];
  const std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) return 0;
  const std::string_view t(target, static_cast<std::size_t>(n));
  if (!t.starts_with("socket:[") || !t.ends_with("]")) return 0;
  unsigned long long ino = 0;
  return parse_number(t.substr(8, t.size() - 9), ino, 10) ? static_cast<ino_t>(ino) : 0;
}

std::string AcceptWait::describe() const {
  if (how == How::accept_call) return "blocked in accept() on fd " + std::to_string(fd);
  return "its socket is in an epoll set";
}

Status can_look_into(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/syscall";
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  char buf[128];
  // The access check is made at open or at read, depending on the kernel.
  const bool denied = (!fd.valid() && (errno == EACCES || errno == EPERM)) ||
                      (fd.valid() && ::read(fd.get(), buf, sizeof buf) < 0 && (errno == EACCES || errno == EPERM));
  if (denied) return errno_error("read", path);
  return Ok{};
}

std::optional<AcceptWait> find_accept_wait(pid_t root, const std::vector<ino_t>& sockets) {
  if (sockets.empty() || root <= 0) return std::nullopt;
  std::vector<pid_t> tree{root};
  for (pid_t p : descendants(root)) tree.push_back(p);
  std::size_t budget = max_threads;
  for (pid_t pid : tree) {
    if (auto fd = accepting_fd(pid, sockets, budget)) return AcceptWait{AcceptWait::How::accept_call, pid, *fd};
    for (std::uint64_t ino : epoll_input_inodes(pid))
      if (ino != 0 && std::find(sockets.begin(), sockets.end(), static_cast<ino_t>(ino)) != sockets.end())
        return AcceptWait{AcceptWait::How::epoll_set, pid, -1};
  }
  return std::nullopt;
}

}  // namespace preforkd::os
