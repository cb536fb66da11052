#pragma once
// The sd_notify protocol as workers speak it to the master: newline-separated
// VAR=value assignments in one datagram.

#include <optional>
#include <string>
#include <string_view>

namespace preforkd {

struct NotifyMessage {
  bool ready = false;     // READY=1
  bool watchdog = false;  // WATCHDOG=1
  bool stopping = false;  // STOPPING=1
  bool reloading = false; // RELOADING=1
  std::optional<std::string> status;  // STATUS=...
};

// Largest datagram the master accepts; longer ones are dropped (systemd takes up to
// its page-sized buffer, and real STATUS= lines are short).
inline constexpr std::size_t max_notify_bytes = 4096;

// Unknown assignments are ignored, as systemd does; nullopt when the datagram has no
// valid assignment at all (garbage).
[[nodiscard]] std::optional<NotifyMessage> parse_notify_message(std::string_view datagram);

}  // namespace preforkd
