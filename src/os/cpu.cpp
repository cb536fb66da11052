#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <preforkd/core/cpu_count.hpp>
#include <preforkd/os/cpu.hpp>
#include <sstream>
#include <string>

namespace preforkd::os {
namespace {

constexpr const char* cgroup_root = "/sys/fs/cgroup";

// CPUs in this process's affinity mask. The mask is grown until it fits, so machines with
// more than CPU_SETSIZE (1024) CPUs are counted right.
int affinity_cpus() {
  for (int ncpus = 1024; ncpus <= 1024 * 1024; ncpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(ncpus);
    if (set == nullptr) break;
    const std::size_t size = CPU_ALLOC_SIZE(ncpus);
    CPU_ZERO_S(size, set);
    const int rc = sched_getaffinity(0, size, set);
    const int count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
    const int err = errno;
    CPU_FREE(set);
    if (rc == 0) return count;
    if (err != EINVAL) break;  // EINVAL: the mask is too small for the kernel's; grow it
  }
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 1;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// This process's cgroup v2 path ("/system.slice/app.service"), from the "0::" line.
std::optional<std::string> cgroup_path() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("0::")) return line.substr(3);
  }
  return std::nullopt;
}

}  // namespace

int read_usable_cpus() {
  int cpus = usable_cpus(affinity_cpus(), std::nullopt);
  const auto path = cgroup_path();
  if (!path) return cpus;
  // A quota on any ancestor limits us too, so take the smallest along the way up. The
  // cgroup root itself (outside a container) has no cpu.max; inside a cgroup namespace the
  // mounted root is the container's own cgroup, which does.
  std::string dir = *path;
  while (true) {
    const std::string file = std::string(cgroup_root) + (dir == "/" ? "" : dir) + "/cpu.max";
    if (const auto text = read_file(file)) cpus = usable_cpus(cpus, *text);
    if (dir.empty() || dir == "/") break;
    const std::size_t slash = dir.rfind('/');
    dir = slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
  }
  return cpus;
}

}  // namespace preforkd::os
