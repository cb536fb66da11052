#include <preforkd/os/process_metrics.hpp>

#include <preforkd/os/fd_limit.hpp>
#include <preforkd/os/proc_stats.hpp>
#include <preforkd/os/read_file.hpp>

#include "proc_fields.hpp"

#include <charconv>
#include <dirent.h>
#include <string>
#include <unistd.h>

namespace preforkd::os {
namespace {

using proc_fields::next_number;

std::optional<std::string> read_text(const char* path) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  return std::move(*text);
}

// Entries of /proc/self/fd, less the one the listing itself holds open.
std::optional<std::uint64_t> count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  std::uint64_t n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;
}

}  // namespace

std::optional<ProcessStat> parse_process_stat(std::string_view stat) {
  const auto ticks = parse_stat_cpu_ticks(stat);   // fields 14 and 15
  const auto start = parse_stat_start_time(stat);  // field 22
  const auto vsize = proc_fields::stat_field(stat, 23);
  const auto rss = proc_fields::stat_field(stat, 24);
  if (!ticks || !start || !vsize || !rss) return std::nullopt;
  return ProcessStat{*ticks, *start, *vsize, *rss};
}

std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat) {
  while (!proc_stat.empty()) {
    const auto end = proc_stat.find('\n');
    std::string_view line = proc_stat.substr(0, end);
    proc_stat.remove_prefix(end == std::string_view::npos ? proc_stat.size() : end + 1);
    if (!line.starts_with("btime ")) continue;
    line.remove_prefix(6);
    const auto v = next_number(line);
    if (!v) return std::nullopt;
    return static_cast<std::int64_t>(*v);
  }
  return std::nullopt;
}

metrics::ProcessMetrics read_own_process_metrics() {
  // The boot time does not change while the system runs; /proc/stat is long on a big machine.
  static const std::optional<std::int64_t> boot_time = [] {
    const auto text = read_text("/proc/stat");
    return text ? parse_boot_time(*text) : std::nullopt;
  }();
  metrics::ProcessMetrics m;
  if (const auto text = read_text("/proc/self/stat")) {
    if (const auto stat = parse_process_stat(*text)) {
      const auto hz = static_cast<double>(ticks_per_second());
      const long page = ::sysconf(_SC_PAGESIZE);
      m.cpu_seconds = static_cast<double>(stat->cpu_ticks) / hz;
      m.virtual_memory_bytes = stat->virtual_bytes;
      m.resident_memory_bytes = stat->resident_pages * static_cast<std::uint64_t>(page > 0 ? page : 4096);
      if (boot_time) m.start_time_seconds = static_cast<double>(*boot_time) + static_cast<double>(stat->start_ticks) / hz;
    }
  }
  m.open_fds = count_open_fds();
  if (const auto limit = current_fd_limit()) m.max_fds = limit->soft;
  return m;
}

}  // namespace preforkd::os
