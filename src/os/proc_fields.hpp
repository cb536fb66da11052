#pragma once
// Reading the space-separated fields of a /proc file (/proc/<pid>/stat, /proc/stat), shared
// by proc_stats.cpp (the workers) and process_metrics.cpp (the master's own process_*).

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

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

}  // namespace preforkd::os::proc_fields
