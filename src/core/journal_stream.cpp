#include <preforkd/core/journal_stream.hpp>

#include <charconv>

namespace preforkd {

namespace {

// A whole decimal number, nothing before or after it.
std::optional<std::uint64_t> decimal(std::string_view text) {
  std::uint64_t value = 0;
  if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

bool is_journal_stream(std::string_view journal_stream, std::uint64_t device, std::uint64_t inode) {
  const auto colon = journal_stream.find(':');
  if (colon == std::string_view::npos) return false;
  const auto dev = decimal(journal_stream.substr(0, colon));
  const auto ino = decimal(journal_stream.substr(colon + 1));
  return dev && ino && *dev == device && *ino == inode;
}

std::string_view priority_prefix(SyslogPriority priority) {
  switch (priority) {
    case SyslogPriority::emerg:
      return "<0>";
    case SyslogPriority::alert:
      return "<1>";
    case SyslogPriority::crit:
      return "<2>";
    case SyslogPriority::err:
      return "<3>";
    case SyslogPriority::warning:
      return "<4>";
    case SyslogPriority::notice:
      return "<5>";
    case SyslogPriority::info:
      return "<6>";
    case SyslogPriority::debug:
      return "<7>";
  }
  return "<6>";
}

PrefixedLine split_priority_prefix(std::string_view line) {
  if (line.size() < 3 || line[0] != '<' || line[1] < '0' || line[1] > '7' || line[2] != '>') return {{}, line};
  return {static_cast<SyslogPriority>(line[1] - '0'), line.substr(3)};
}

}  // namespace preforkd
