// Looks for a worker's tree waiting on its own sockets (see the header).

#include <preforkd/os/accept_wait.hpp>

#include <preforkd/os/epoll_interest.hpp>
#include <preforkd/os/fd.hpp>
#include <preforkd/os/process_tree.hpp>
#include <preforkd/os/worker_activity.hpp>

#include <algorithm>
#include <charconv>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

// A fork bomb must not make one look unbounded.
constexpr std::size_t max_threads = 1024;

bool has(const std::vector<ino_t>& sockets, std::uint64_t ino) {
  return ino != 0 && std::find(sockets.begin(), sockets.end(), static_cast<ino_t>(ino)) != sockets.end();
}

// The inode of `pid`'s fd `fd` when it is a socket ("socket:[12345]"), else 0.
std::uint64_t socket_inode(pid_t pid, int fd) {
  char target[64];
  const std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) return 0;
  const std::string_view t(target, static_cast<std::size_t>(n));
  if (!t.starts_with("socket:[") || !t.ends_with("]")) return 0;
  std::uint64_t ino = 0;
  const std::string_view digits = t.substr(8, t.size() - 9);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ino);
  return ec == std::errc{} && end == digits.data() + digits.size() ? ino : 0;
}

std::vector<pid_t> threads_of(pid_t pid) {
  std::vector<pid_t> out;
  const std::string dir_path = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) return out;
  while (const dirent* e = ::readdir(dir)) {
    pid_t tid = 0;
    const std::string_view name(e->d_name);
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), tid);
    if (ec == std::errc{} && end == name.data() + name.size()) out.push_back(tid);
  }
  ::closedir(dir);
  return out;
}

// The fd a thread of `pid` is blocked in accept() on, when it is one of `sockets`.
std::optional<int> accepting_fd(pid_t pid, const std::vector<ino_t>& sockets, std::size_t& budget) {
  for (pid_t tid : threads_of(pid)) {
    if (budget == 0) return std::nullopt;
    --budget;
    const std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall";
    Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!f.valid()) continue;
    char buf[256];
    const ssize_t n = ::read(f.get(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    const auto state = parse_syscall_line(std::string_view(buf, static_cast<std::size_t>(n)));
    if (state && state->kind == SyscallState::Kind::accepting && has(sockets, socket_inode(pid, state->fd)))
      return state->fd;
  }
  return std::nullopt;
}

}  // namespace

std::string AcceptWait::describe() const {
  if (how == How::accept_call) return "blocked in accept() on fd " + std::to_string(fd);
  return "its socket is in an epoll set";
}

std::optional<AcceptWait> find_accept_wait(pid_t root, const std::vector<ino_t>& sockets) {
  if (sockets.empty() || root <= 0) return std::nullopt;
  std::vector<pid_t> tree{root};
  for (pid_t p : descendants(root)) tree.push_back(p);
  std::size_t budget = max_threads;
  for (pid_t pid : tree) {
    if (auto fd = accepting_fd(pid, sockets, budget)) return AcceptWait{AcceptWait::How::accept_call, pid, *fd};
    for (std::uint64_t ino : epoll_input_inodes(pid))
      if (has(sockets, ino)) return AcceptWait{AcceptWait::How::epoll_set, pid, -1};
  }
  return std::nullopt;
}

}  // namespace preforkd::os
