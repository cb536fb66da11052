#include <preforkd/os/process_metrics.hpp>

#include <preforkd/os/fd_limit.hpp>
#include <preforkd/os/proc_stats.hpp>

#include "proc_fields.hpp"

#include <charconv>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>

namespace preforkd::os {
namespace {

using proc_fields::next_number;
using proc_fields::skip_field;

std::optional<std::string> read_text(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), {});
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
  // "pid (comm) state ...": comm may hold spaces and ')', so fields are counted after the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  for (int field = 3; field <= 13; ++field) skip_field(rest);
  const auto utime = next_number(rest);
  const auto stime = next_number(rest);
  for (int field = 16; field <= 21; ++field) skip_field(rest);
  const auto start = next_number(rest);
  const auto vsize = next_number(rest);
  const auto rss = next_number(rest);
  if (!utime || !stime || !start || !vsize || !rss) return std::nullopt;
  return ProcessStat{*utime + *stime, *start, *vsize, *rss};
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
