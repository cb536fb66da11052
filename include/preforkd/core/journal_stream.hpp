#pragma once
// systemd's journal stream, the two facts preforkd needs: whether its log stream is the
// journal (JOURNAL_STREAM, systemd.exec(5)), and the syslog priority a line carries in
// front ("<3>", sd-daemon(3)), which the journal's stream reader files as the line's
// PRIORITY= (SyslogLevelPrefix=, on by default) so that `journalctl -p err` finds it.
// Pure: the caller passes the variable's value and what fstat() said.
// Table-tested in tests/unit/test_journal_stream.cpp.

#include <cstdint>
#include <optional>
#include <string_view>

namespace preforkd {

// The syslog priorities (severities), as journald files them.
enum class SyslogPriority { emerg = 0, alert = 1, crit = 2, err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// JOURNAL_STREAM is "<device>:<inode>" (decimal st_dev and st_ino) of the stream systemd
// connected to the journal. True when it names the file whose fstat() gave `device` and
// `inode`: a process that inherited the variable with its stderr redirected elsewhere (a
// pipe, a file, a terminal) sees false, as systemd's own check does.
[[nodiscard]] bool is_journal_stream(std::string_view journal_stream, std::uint64_t device, std::uint64_t inode);

// "<N>", the prefix that gives a line its priority in the journal.
[[nodiscard]] std::string_view priority_prefix(SyslogPriority priority);

// A line and the priority it named itself.
struct PrefixedLine {
  std::optional<SyslogPriority> priority{};  // none: the line had no "<N>" in front
  std::string_view text{};                   // the line without its prefix
};
// A line that begins with "<0>" … "<7>", as programs written for the journal log: its
// priority and the rest. Any other line: no priority and the whole line.
[[nodiscard]] PrefixedLine split_priority_prefix(std::string_view line);

}  // namespace preforkd
