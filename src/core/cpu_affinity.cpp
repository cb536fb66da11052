// Slot -> CPU for [worker] cpu_affinity, and the checks and notes about it.

#include <preforkd/core/cpu_affinity.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace preforkd {
namespace {

// The CPUs slots are spread over, in slot order.
const std::vector<int>& spread(const CpuAffinity& affinity, const std::vector<int>& usable) {
  return affinity.kind == CpuAffinity::Kind::list ? affinity.cpus : usable;
}

}  // namespace

std::optional<int> cpu_for_slot(const CpuAffinity& affinity, const std::vector<int>& usable, int slot) {
  if (affinity.kind == CpuAffinity::Kind::none || slot < 0) return std::nullopt;
  const std::vector<int>& cpus = spread(affinity, usable);
  if (cpus.empty()) return std::nullopt;
  return cpus[static_cast<std::size_t>(slot) % cpus.size()];
}

std::optional<std::string> affinity_problem(const CpuAffinity& affinity, const std::vector<int>& usable) {
  if (affinity.kind != CpuAffinity::Kind::list) return std::nullopt;
  for (int cpu : affinity.cpus) {
    if (std::find(usable.begin(), usable.end(), cpu) == usable.end())
      return fmt::format("CPU {} is not in this process's usable set ({})", cpu, cpu_list_text(usable));
  }
  return std::nullopt;
}

std::optional<std::string> affinity_wrap_note(const CpuAffinity& affinity, const std::vector<int>& usable,
                                              int count) {
  if (affinity.kind == CpuAffinity::Kind::none) return std::nullopt;
  const std::vector<int>& cpus = spread(affinity, usable);
  const int n = static_cast<int>(cpus.size());
  if (n == 0 || count <= n) return std::nullopt;
  return fmt::format("{} workers on {} CPUs ({}): slot i shares a CPU with slot i - {}", count, n,
                     cpu_list_text(cpus), n);
}

std::string cpu_list_text(std::vector<int> cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace preforkd
