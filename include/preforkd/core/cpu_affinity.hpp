#pragma once
// [worker] cpu_affinity: which CPU each slot is pinned to. Pure: the usable CPUs (the
// master's affinity mask, which includes its cpuset) are passed in.

#include <preforkd/core/config.hpp>

#include <optional>
#include <string>
#include <vector>

namespace preforkd {

// The highest CPU number a list may name: spawn builds a cpu_set_t (CPU_SETSIZE CPUs).
inline constexpr int max_cpu_number = 1023;

// The CPU `slot` is pinned to: "auto" takes usable[slot % n], a list takes
// list[slot % size]; nullopt without pinning (or with no usable CPU to pick from).
[[nodiscard]] std::optional<int> cpu_for_slot(const CpuAffinity& affinity, const std::vector<int>& usable, int slot);

// The first CPU of a list that is not usable, as "CPU 7 is not in this process's
// usable set (0-1)"; nullopt when every one is (and always for "auto" and none).
[[nodiscard]] std::optional<std::string> affinity_problem(const CpuAffinity& affinity, const std::vector<int>& usable);

// When `count` workers are more than the CPUs they are spread over, so that slots share
// CPUs: "4 workers on 2 CPUs (0-1): slot i shares a CPU with slot i - 2"; else nullopt.
[[nodiscard]] std::optional<std::string> affinity_wrap_note(const CpuAffinity& affinity,
                                                            const std::vector<int>& usable, int count);

// "0-3,5,7": a sorted CPU set in the kernel's list format (Cpus_allowed_list).
[[nodiscard]] std::string cpu_list_text(std::vector<int> cpus);

}  // namespace preforkd
