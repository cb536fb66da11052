#pragma once
// The CPUs this process may run on: its affinity mask (which the cpuset restricts too).

#include <vector>

namespace preforkd::os {

// The CPU numbers in this process's affinity mask, ascending (empty if it cannot be read).
[[nodiscard]] std::vector<int> read_usable_cpu_list();

}  // namespace preforkd::os
