// The master's affinity mask as a list of CPU numbers, for worker.cpu_affinity and for
// counting the usable CPUs (os/cpu): the one reader of the mask.

#include <preforkd/os/affinity.hpp>

#include <cerrno>
#include <sched.h>

namespace preforkd::os {

std::vector<int> read_usable_cpu_list() {
  // Grown until it fits the kernel's mask, so machines with more than CPU_SETSIZE (1024)
  // CPUs are read right.
  for (int ncpus = 1024; ncpus <= 1024 * 1024; ncpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(ncpus);
    if (set == nullptr) break;
    const std::size_t size = CPU_ALLOC_SIZE(ncpus);
    CPU_ZERO_S(size, set);
    if (::sched_getaffinity(0, size, set) == 0) {
      std::vector<int> cpus;
      for (int cpu = 0; cpu < ncpus; ++cpu)
        if (CPU_ISSET_S(cpu, size, set)) cpus.push_back(cpu);
      CPU_FREE(set);
      return cpus;
    }
    const int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) break;  // EINVAL: the mask is too small for the kernel's; grow it
  }
  return {};
}

}  // namespace preforkd::os
