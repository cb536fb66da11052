#pragma once
// Reads the affinity mask and the cgroup v2 cpu.max of this process.

namespace preforkd::os {

// usable_cpus() from core/cpu_count.hpp applied to this process's affinity and cgroup.
[[nodiscard]] int read_usable_cpus();

}  // namespace preforkd::os
