#pragma once
// What the kernel knows about a process: memory and CPU time from /proc, and who is on
// the other end of a Unix socket (SO_PEERCRED).

#include <preforkd/core/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

// The memory figures of /proc/<pid>/smaps_rollup, in bytes: Rss, Pss, and the private
// (unique) part, Private_Clean + Private_Dirty.
struct SmapsRollup {
  std::uint64_t rss = 0;
  std::uint64_t pss = 0;
  std::uint64_t uss = 0;
  bool operator==(const SmapsRollup&) const = default;
};
[[nodiscard]] std::optional<SmapsRollup> parse_smaps_rollup(std::string_view text);

// Resident set size in bytes: resident pages from /proc/<pid>/statm times the page size.
[[nodiscard]] Result<std::uint64_t> read_rss_bytes(pid_t pid);

// /proc/<pid>/smaps_rollup (Linux 4.14). A process that has no memory map (a zombie, a
// kernel thread) reads as zeroes.
[[nodiscard]] Result<SmapsRollup> read_smaps_rollup(pid_t pid);

// The start time of a process (parse_stat_start_time).
[[nodiscard]] Result<std::uint64_t> read_start_time(pid_t pid);

// CPU time used so far (user + system), in clock ticks, from /proc/<pid>/stat.
[[nodiscard]] Result<std::uint64_t> read_cpu_ticks(pid_t pid);

// Clock ticks per second (sysconf(_SC_CLK_TCK)), the unit of read_cpu_ticks.
[[nodiscard]] long ticks_per_second();

// CPU use between two samples of read_cpu_ticks, in percent of one CPU (200 = two CPUs busy).
[[nodiscard]] double cpu_percent(std::uint64_t ticks_before, std::uint64_t ticks_after, long ticks_per_second,
                                 std::chrono::duration<double> elapsed);

// The parsers behind the readers, for tests: the text of /proc/<pid>/stat and statm.
// stat's second field is the command name in parentheses, which may itself contain spaces
// and ')'; the fields after the last ')' are read.
[[nodiscard]] std::optional<std::uint64_t> parse_stat_cpu_ticks(std::string_view stat);
[[nodiscard]] std::optional<std::uint64_t> parse_statm_resident_pages(std::string_view statm);
// Start time of a process in clock ticks after boot (field 22 of /proc/<pid>/stat): with
// the pid, it names one process, never a later one that reused the pid.
[[nodiscard]] std::optional<std::uint64_t> parse_stat_start_time(std::string_view stat);
// The "Groups:" line of /proc/<pid>/status.
[[nodiscard]] std::optional<std::vector<gid_t>> parse_status_groups(std::string_view status);

// The peer of a connected Unix socket, as it was when it connected.
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (SO_PEERGROUPS)
};

// From the socket itself (SO_PEERCRED and SO_PEERGROUPS), as the kernel recorded them at
// connect(): never from /proc/<pid>, whose pid may already belong to another process.
[[nodiscard]] Result<PeerCredentials> read_peer_credentials(int socket_fd);

// A process's supplementary groups, from /proc/<pid>/status.
[[nodiscard]] Result<std::vector<gid_t>> read_supplementary_groups(pid_t pid);

}  // namespace preforkd::os
