#pragma once
// Reading the space-separated fields of a /proc file (/proc/<pid>/stat, /proc/stat,
// /proc/<tid>/syscall) and the numbered entries of a /proc directory, shared by
// proc_stats.cpp (the workers), process_metrics.cpp (the master's own process_*),
// accept_wait.cpp and worker_activity.cpp.

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <dirent.h>

namespace preforkd::os::proc_fields {

// The next space- or tab-separated unsigned number in `text`, consumed.
inline std::optional<std::uint64_t> next_number(std::string_view& text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc()) return std::nullopt;
  text.remove_prefix(static_cast<std::size_t>(ptr - text.data()));
  return v;
}

// Consumes the next space-separated field, whatever it holds.
inline void skip_field(std::string_view& text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.front() != ' ') text.remove_prefix(1);
}

// The number in field `field` (3 and up: 3 is the state) of a /proc/<pid>/stat line,
// "pid (comm) state ...": comm may hold spaces and ')', so fields are counted after the
// last ')'. nullopt when there is no such field or it is not a number.
inline std::optional<std::uint64_t> stat_field(std::string_view stat, int field) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  for (int f = 3; f < field; ++f) skip_field(rest);
  return next_number(rest);
}

// `text` as a whole number in `base` (16 takes an optional "0x"), nothing else around it.
template <class T>
bool parse_number(std::string_view text, T& out, int base) {
  if (base == 16 && text.starts_with("0x")) text.remove_prefix(2);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc{} && end == text.data() + text.size();
}

// The space- or newline-separated words of `text`.
inline std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n') ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

// The numbered entries of a /proc directory: /proc's pids, /proc/<pid>/task's tids.
inline std::vector<pid_t> numbered_entries(const std::string& dir_path) {
  std::vector<pid_t> out;
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) return out;
  while (const dirent* e = ::readdir(dir)) {
    pid_t n = 0;
    if (parse_number(std::string_view(e->d_name), n, 10)) out.push_back(n);
  }
  ::closedir(dir);
  return out;
}

}  // namespace preforkd::os::proc_fields
