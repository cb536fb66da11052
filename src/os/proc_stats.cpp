#include <preforkd/os/proc_stats.hpp>

#include "proc_fields.hpp"

#include <preforkd/os/read_file.hpp>
#include <preforkd/os/sys_error.hpp>

#include <cerrno>
#include <charconv>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

using proc_fields::next_number;
using proc_fields::stat_field;

Result<std::string> read_proc_file(pid_t pid, const char* name) {
  return read_file("/proc/" + std::to_string(pid) + "/" + name);
}

}  // namespace

std::optional<std::uint64_t> parse_stat_cpu_ticks(std::string_view stat) {
  // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ..."
  const auto utime = stat_field(stat, 14);
  const auto stime = stat_field(stat, 15);
  if (!utime || !stime) return std::nullopt;
  return *utime + *stime;
}

std::optional<std::uint64_t> parse_stat_start_time(std::string_view stat) {
  return stat_field(stat, 22);
}

std::optional<SmapsRollup> parse_smaps_rollup(std::string_view text) {
  // "Rss:   1234 kB" lines after a header line with the address range.
  SmapsRollup out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, colon);
    std::uint64_t* into = nullptr;
    bool add = false;
    if (key == "Rss") {
      into = &out.rss;
    } else if (key == "Pss") {
      into = &out.pss;
    } else if (key == "Private_Clean" || key == "Private_Dirty") {
      into = &out.uss;
      add = true;
    } else {
      continue;
    }
    std::string_view rest = line.substr(colon + 1);
    const auto kib = next_number(rest);
    if (!kib) return std::nullopt;
    *into = (add ? *into : 0) + *kib * 1024;
  }
  // A process without memory (a zombie) has an empty file: zeroes, not an error.
  return out;
}

std::optional<std::uint64_t> parse_statm_resident_pages(std::string_view statm) {
  // "size resident shared text lib data dt", in pages.
  if (!next_number(statm)) return std::nullopt;
  return next_number(statm);
}

std::optional<std::vector<gid_t>> parse_status_groups(std::string_view status) {
  constexpr std::string_view key = "Groups:";
  std::size_t at = status.starts_with(key) ? 0 : status.find(std::string("\n") + std::string(key));
  if (at == std::string_view::npos) return std::nullopt;
  if (at != 0) ++at;
  std::string_view line = status.substr(at + key.size());
  line = line.substr(0, line.find('\n'));
  std::vector<gid_t> groups;
  while (true) {
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty()) break;
    const auto gid = next_number(line);
    if (!gid) return std::nullopt;
    groups.push_back(static_cast<gid_t>(*gid));
  }
  return groups;
}

Result<std::uint64_t> read_rss_bytes(pid_t pid) {
  auto text = read_proc_file(pid, "statm");
  if (!text) return Error{text.error()};
  const auto pages = parse_statm_resident_pages(*text);
  if (!pages) return Error{"/proc/" + std::to_string(pid) + "/statm: unexpected format"};
  const long page = ::sysconf(_SC_PAGESIZE);
  return *pages * static_cast<std::uint64_t>(page > 0 ? page : 4096);
}

Result<SmapsRollup> read_smaps_rollup(pid_t pid) {
  auto text = read_proc_file(pid, "smaps_rollup");
  if (!text) return Error{text.error()};
  const auto rollup = parse_smaps_rollup(*text);
  if (!rollup) return Error{"/proc/" + std::to_string(pid) + "/smaps_rollup: unexpected format"};
  return *rollup;
}

Result<std::uint64_t> read_start_time(pid_t pid) {
  auto text = read_proc_file(pid, "stat");
  if (!text) return Error{text.error()};
  const auto t = parse_stat_start_time(*text);
  if (!t) return Error{"/proc/" + std::to_string(pid) + "/stat: unexpected format"};
  return *t;
}

Result<std::uint64_t> read_cpu_ticks(pid_t pid) {
  auto text = read_proc_file(pid, "stat");
  if (!text) return Error{text.error()};
  const auto ticks = parse_stat_cpu_ticks(*text);
  if (!ticks) return Error{"/proc/" + std::to_string(pid) + "/stat: unexpected format"};
  return *ticks;
}

long ticks_per_second() {
  static const long ticks = [] {
    const long t = ::sysconf(_SC_CLK_TCK);
    return t > 0 ? t : 100;
  }();
  return ticks;
}

double cpu_percent(std::uint64_t ticks_before, std::uint64_t ticks_after, long ticks_per_second,
                   std::chrono::duration<double> elapsed) {
  // A new process in the slot restarts the count: no negative CPU.
  if (ticks_after < ticks_before || ticks_per_second <= 0 || elapsed.count() <= 0) return 0.0;
  const double cpu_seconds = static_cast<double>(ticks_after - ticks_before) / static_cast<double>(ticks_per_second);
  return 100.0 * cpu_seconds / elapsed.count();
}

Result<PeerCredentials> read_peer_credentials(int socket_fd) {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return errno_error("read", "SO_PEERCRED of fd " + std::to_string(socket_fd));
  }
  PeerCredentials peer{cred.pid, cred.uid, cred.gid, {}};
  // SO_PEERGROUPS (Linux 4.13) says how much room it needs with ERANGE; the groups are
  // the peer's as of connect(), so a retry sees the same count.
  peer.groups.resize(16);
  for (int attempt = 0; attempt < 4; ++attempt) {
    socklen_t bytes = static_cast<socklen_t>(peer.groups.size() * sizeof(gid_t));
    if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERGROUPS, peer.groups.data(), &bytes) == 0) {
      peer.groups.resize(bytes / sizeof(gid_t));
      return peer;
    }
    if (errno != ERANGE) return errno_error("read", "SO_PEERGROUPS of fd " + std::to_string(socket_fd));
    peer.groups.resize(bytes / sizeof(gid_t) + 1);
  }
  return Error{
      failed_to("read", "SO_PEERGROUPS of fd " + std::to_string(socket_fd), "the group list keeps changing size")};
}

Result<std::vector<gid_t>> read_supplementary_groups(pid_t pid) {
  auto text = read_proc_file(pid, "status");
  if (!text) return Error{text.error()};
  auto groups = parse_status_groups(*text);
  if (!groups) return Error{"/proc/" + std::to_string(pid) + "/status: no readable Groups: line"};
  return std::move(*groups);
}

}  // namespace preforkd::os
