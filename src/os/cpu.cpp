#include <preforkd/os/cpu.hpp>

#include <preforkd/core/cpu_count.hpp>
#include <preforkd/os/affinity.hpp>
#include <preforkd/os/cgroup.hpp>
#include <preforkd/os/read_file.hpp>

#include <string>
#include <unistd.h>

namespace preforkd::os {
namespace {

constexpr const char* cgroup_root = "/sys/fs/cgroup";

// CPUs in this process's affinity mask (os/affinity reads it), or the online CPUs if the
// mask cannot be read.
int affinity_cpus() {
  const std::size_t mask = read_usable_cpu_list().size();
  if (mask > 0) return static_cast<int>(mask);
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 1;
}

// This process's cgroup v2 path ("/system.slice/app.service"), from the "0::" line.
std::optional<std::string> cgroup_path() {
  const auto text = read_file("/proc/self/cgroup");
  return text ? parse_cgroup2_path(*text) : std::nullopt;
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
