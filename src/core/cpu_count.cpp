#include <charconv>
#include <cstdint>
#include <preforkd/core/cpu_count.hpp>

namespace preforkd {
namespace {

// One field of cpu.max: a positive integer; nullopt for "max" or anything malformed.
std::optional<std::int64_t> positive_field(std::string_view& rest) {
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
  if (ec != std::errc() || v <= 0) return std::nullopt;
  rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
  return v;
}

// The quota in CPUs, rounded up; nullopt for "max" (no quota) or text we do not understand,
// since guessing a lower count from a garbled file would starve the service.
std::optional<std::int64_t> quota_cpus(std::string_view cpu_max) {
  while (!cpu_max.empty() && (cpu_max.back() == '\n' || cpu_max.back() == ' ')) cpu_max.remove_suffix(1);
  const auto quota = positive_field(cpu_max);
  if (!quota || cpu_max.empty() || cpu_max.front() != ' ') return std::nullopt;
  const auto period = positive_field(cpu_max);
  if (!period || !cpu_max.empty()) return std::nullopt;
  return *quota / *period + (*quota % *period != 0 ? 1 : 0);
}

}  // namespace

int usable_cpus(int affinity_cpus, std::optional<std::string_view> cpu_max) {
  std::int64_t cpus = affinity_cpus < 1 ? 1 : affinity_cpus;
  if (cpu_max) {
    const auto quota = quota_cpus(*cpu_max);
    if (quota && *quota < cpus) cpus = *quota;
  }
  return static_cast<int>(cpus < 1 ? 1 : cpus);
}

}  // namespace preforkd
