// Reads /proc to tell whether a worker is waiting for a connection (see the header).

#include <preforkd/os/worker_activity.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

// At most this many processes and threads per tree: a fork bomb must not make the
// master's sampling unbounded.
constexpr std::size_t max_leaves = 256;
constexpr std::size_t max_threads = 1024;
constexpr auto stat_every = std::chrono::milliseconds(50);

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

template <class T>
bool parse_number(std::string_view text, T& out, int base) {
  if (base == 16 && text.starts_with("0x")) text.remove_prefix(2);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc{} && end == text.data() + text.size();
}

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n') ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

Fd open_proc(const std::string& path) { return Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); }

// The whole (small) file at offset 0; -1 on error.
ssize_t read_at_zero(const Fd& fd, char* buf, std::size_t size) {
  const ssize_t n = ::pread(fd.get(), buf, size - 1, 0);
  if (n >= 0) buf[n] = '\0';
  return n;
}

std::vector<pid_t> numeric_entries(const std::string& dir_path) {
  std::vector<pid_t> out;
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) return out;
  while (const dirent* e = ::readdir(dir)) {
    pid_t n = 0;
    if (parse_number(std::string_view(e->d_name), n, 10)) out.push_back(n);
  }
  ::closedir(dir);
  return out;
}

// The parent pid in a /proc/<pid>/stat line (the field after the state).
std::optional<pid_t> parse_stat_ppid(std::string_view stat) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  const auto fields = words(stat.substr(close + 1));
  pid_t ppid = 0;
  if (fields.size() < 2 || !parse_number(fields[1], ppid, 10)) return std::nullopt;
  return ppid;
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

char parse_stat_state(std::string_view stat) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) return 0;
  const auto fields = words(stat.substr(close + 1));
  return fields.empty() || fields[0].size() != 1 ? 0 : fields[0][0];
}

std::vector<pid_t> ActivityProbe::children_of(pid_t pid) {
  std::vector<pid_t> out;
  // /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN; without it, one scan of
  // /proc per refresh gives every process's parent.
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task/";
  const auto tids = numeric_entries(task_dir);
  bool have_children_files = false;
  for (pid_t tid : tids) {
    Fd f = open_proc(task_dir + std::to_string(tid) + "/children");
    if (!f.valid()) break;
    have_children_files = true;
    char buf[4096];
    if (read_at_zero(f, buf, sizeof buf) < 0) continue;
    for (std::string_view w : words(buf)) {
      pid_t child = 0;
      if (parse_number(w, child, 10)) out.push_back(child);
    }
  }
  if (have_children_files) return out;
  if (!parents_) {
    parents_.emplace();
    for (pid_t p : numeric_entries("/proc")) {
      Fd f = open_proc("/proc/" + std::to_string(p) + "/stat");
      char buf[512];
      if (!f.valid() || read_at_zero(f, buf, sizeof buf) <= 0) continue;
      if (auto ppid = parse_stat_ppid(buf)) parents_->emplace(*ppid, p);
    }
  }
  auto [first, last] = parents_->equal_range(pid);
  for (auto it = first; it != last; ++it) out.push_back(it->second);
  return out;
}

bool ActivityProbe::build(pid_t root, Tree& tree) {
  tree.leaves.clear();
  std::vector<pid_t> pending{root};
  std::size_t threads = 0;
  while (!pending.empty() && tree.leaves.size() < max_leaves) {
    const pid_t pid = pending.back();
    pending.pop_back();
    auto kids = children_of(pid);
    if (!kids.empty()) {
      pending.insert(pending.end(), kids.begin(), kids.end());
      continue;
    }
    Leaf leaf;
    leaf.pid = pid;
    const std::string task_dir = "/proc/" + std::to_string(pid) + "/task/";
    for (pid_t tid : numeric_entries(task_dir)) {
      if (threads >= max_threads) break;
      Thread t;
      t.tid = tid;
      t.syscall = open_proc(task_dir + std::to_string(tid) + "/syscall");
      t.stat = open_proc(task_dir + std::to_string(tid) + "/stat");
      if (!t.syscall.valid() || !t.stat.valid()) continue;
      leaf.threads.push_back(std::move(t));
      ++threads;
    }
    if (!leaf.threads.empty()) tree.leaves.push_back(std::move(leaf));
  }
  return !tree.leaves.empty();
}

ino_t ActivityProbe::socket_inode(Leaf& leaf, int fd) {
  if (auto it = leaf.socket_of_fd.find(fd); it != leaf.socket_of_fd.end()) return it->second;
  char target[64];
  const std::string link = "/proc/" + std::to_string(leaf.pid) + "/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  ino_t ino = 0;
  if (n > 0) {
    const std::string_view t(target, static_cast<std::size_t>(n));
    // "socket:[12345]"
    if (t.starts_with("socket:[") && t.ends_with("]")) {
      unsigned long long v = 0;
      if (parse_number(t.substr(8, t.size() - 9), v, 10)) ino = static_cast<ino_t>(v);
    }
  }
  leaf.socket_of_fd[fd] = ino;
  return ino;
}

Activity ActivityProbe::sample(pid_t pid, const std::vector<ino_t>& slot_sockets) {
  auto it = trees_.find(pid);
  if (it == trees_.end()) {
    Tree tree;
    if (!build(pid, tree)) return Activity::unknown;
    it = trees_.emplace(pid, std::move(tree)).first;
  }
  bool stale = false;
  bool any_read = false;
  Activity result = Activity::busy;
  for (Leaf& leaf : it->second.leaves) {
    for (Thread& t : leaf.threads) {
      char buf[256];
      if (read_at_zero(t.syscall, buf, sizeof buf) <= 0) {
        stale = true;  // the thread is gone (ESRCH): list the tree again next time
        continue;
      }
      any_read = true;
      const auto state = parse_syscall_line(buf);
      if (!state) continue;
      bool waits = state->kind == SyscallState::Kind::polling;
      if (state->kind == SyscallState::Kind::accepting) {
        const ino_t ino = socket_inode(leaf, state->fd);
        waits = ino != 0 && std::find(slot_sockets.begin(), slot_sockets.end(), ino) != slot_sockets.end();
      }
      if (!waits) continue;
      // A stopped thread still shows the syscall it was stopped in. Being stopped lasts
      // (SIGSTOP, a debugger), so its state letter is read again only every 50 ms.
      const auto now = std::chrono::steady_clock::now();
      if (now - t.stat_read >= stat_every) {
        char stat[512];
        if (read_at_zero(t.stat, stat, sizeof stat) <= 0) {
          stale = true;
          continue;
        }
        const char s = parse_stat_state(stat);
        if (s != 'S' && s != 'I' && s != 'T' && s != 't') continue;  // woken meanwhile: busy, read again next time
        t.stopped = s == 'T' || s == 't';  // stopped or traced
        t.stat_read = now;
      }
      if (!t.stopped) {
        result = Activity::waiting;
        break;
      }
    }
    if (result == Activity::waiting) break;
  }
  if (stale) trees_.erase(it);
  if (!any_read && result != Activity::waiting) return Activity::unknown;
  return result;
}

void ActivityProbe::refresh() {
  trees_.clear();
  parents_.reset();
}

void ActivityProbe::forget_others(const std::vector<pid_t>& workers) {
  std::erase_if(trees_, [&](const auto& entry) {
    return std::find(workers.begin(), workers.end(), entry.first) == workers.end();
  });
}

}  // namespace preforkd::os
