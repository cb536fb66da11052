#pragma once
// How many CPUs the process may really use: its affinity mask, capped by a cgroup v2 quota.

#include <optional>
#include <string_view>

namespace preforkd {

// `affinity_cpus`: CPUs in the affinity mask (sched_getaffinity).
// `cpu_max`: the contents of the cgroup v2 cpu.max file ("max 100000" or "150000 100000"),
// nullopt when there is none. The quota is rounded up; the result is at least 1.
[[nodiscard]] int usable_cpus(int affinity_cpus, std::optional<std::string_view> cpu_max);

}  // namespace preforkd
