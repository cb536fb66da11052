#pragma once
// The master's own process figures for /metrics, read as the Prometheus client libraries'
// process collector reads them: /proc/self/stat (CPU time, memory, start time), the
// entries of /proc/self/fd, the open-files limit, and /proc/stat's boot time.

#include <preforkd/core/metrics_text.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace preforkd::os {

// The fields of /proc/<pid>/stat that the process collector exports.
struct ProcessStat {
  std::uint64_t cpu_ticks = 0;       // utime + stime (fields 14, 15)
  std::uint64_t start_ticks = 0;     // starttime, after boot (field 22)
  std::uint64_t virtual_bytes = 0;   // vsize (field 23)
  std::uint64_t resident_pages = 0;  // rss (field 24)
  bool operator==(const ProcessStat&) const = default;
};
[[nodiscard]] std::optional<ProcessStat> parse_process_stat(std::string_view stat);

// The "btime" line of /proc/stat: when the system booted, in seconds since the epoch.
[[nodiscard]] std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat);

// This process's figures now; one that cannot be read is left empty. Per call: one read of
// /proc/self/stat, one listing of /proc/self/fd and getrlimit (boot time is read once).
[[nodiscard]] metrics::ProcessMetrics read_own_process_metrics();

}  // namespace preforkd::os
