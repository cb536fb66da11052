// Reads /proc to tell whether a worker is waiting for a connection (see the header).

#include <preforkd/os/worker_activity.hpp>

#include "proc_fields.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

// At most this many processes and threads per tree: a fork bomb must not make the
// master's sampling unbounded.
constexpr std::size_t max_leaves = 256;
constexpr std::size_t max_threads = 1024;
constexpr auto stat_every = std::chrono::milliseconds(50);

using proc_fields::numbered_entries;
using proc_fields::parse_number;
using proc_fields::words;

Fd open_proc(const std::string& path) { return Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); }

// The whole (small) file at offset 0; -1 on error.
ssize_t read_at_zero(const Fd& fd, char* buf, std::size_t size) {
  const ssize_t n = ::pread(fd.get(), buf, size - 1, 0);
  if (n >= 0) buf[n] = '\0';
  return n;
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
  const auto tids = numbered_entries(task_dir);
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
    for (pid_t p : numbered_entries("/proc")) {
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
    for (pid_t tid : numbered_entries(task_dir)) {
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
  return leaf.socket_of_fd[fd] = socket_inode_of(leaf.pid, fd);
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
      const bool waits = state->kind == SyscallState::Kind::polling ||
                         waits_in_accept(*state, slot_sockets, [&](int fd) { return socket_inode(leaf, fd); });
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
