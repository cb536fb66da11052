#include <preforkd/os/process_tree.hpp>

#include <preforkd/os/proc_stats.hpp>

#include <cerrno>
#include <csignal>
#include <dirent.h>
#include <fstream>
#include <string>

namespace preforkd::os {

void append_children(pid_t pid, std::vector<pid_t>& out) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(task.c_str());
  if (dir == nullptr) return;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(task + "/" + e->d_name + "/children");
    pid_t child = 0;
    while (in >> child) out.push_back(child);
  }
  ::closedir(dir);
}

namespace {

// Bounds the walk: a fork bomb under a worker cannot make the master walk forever.
constexpr std::size_t max_tree_processes = 65536;

}  // namespace

std::vector<pid_t> descendants(pid_t top) {
  std::vector<pid_t> out;
  append_children(top, out);
  for (std::size_t i = 0; i < out.size() && out.size() < max_tree_processes; ++i) append_children(out[i], out);
  return out;
}

std::vector<ProcessId> snapshot_descendants(pid_t top) {
  std::vector<ProcessId> out;
  for (pid_t pid : descendants(top))
    if (auto t = read_start_time(pid)) out.push_back(ProcessId{pid, *t});
  return out;
}

int kill_processes(const std::vector<ProcessId>& processes) {
  int n = 0;
  for (const ProcessId& p : processes) {
    // Checked just before the kill: a pid can be reused only after its process is reaped,
    // and an orphan of a worker is reaped by the master itself, after this call.
    const auto now = read_start_time(p.pid);
    if (!now || *now != p.start_time) continue;
    if (::kill(p.pid, SIGKILL) == 0) ++n;
  }
  return n;
}

TreeUsage tree_usage(const std::vector<pid_t>& pids) {
  TreeUsage u;
  for (pid_t pid : pids) {
    auto mem = read_smaps_rollup(pid);
    if (!mem) continue;  // gone meanwhile
    ++u.processes;
    u.rss += mem->rss;
    u.pss += mem->pss;
    u.uss += mem->uss;
    if (auto ticks = read_cpu_ticks(pid)) u.cpu_ticks += *ticks;
  }
  return u;
}

TreeUsage tree_memory(pid_t top) {
  std::vector<pid_t> pids{top};
  for (pid_t pid : descendants(top)) pids.push_back(pid);
  return tree_usage(pids);
}

TreeUsage tree_memory(const WorkerCgroup& cgroup) {
  TreeUsage u = tree_usage(cgroup.pids());
  if (auto usec = cgroup.cpu_usage_usec())
    u.cpu_ticks = *usec * static_cast<std::uint64_t>(ticks_per_second()) / 1'000'000U;
  return u;
}

}  // namespace preforkd::os
