#pragma once
// preforkctl status without --json: the master line, one row per worker, the listeners,
// in the manner of `supervisorctl status` and `pm2 ls`.

#include <preforkd/core/control_protocol.hpp>

#include <cstdint>
#include <string>

namespace preforkd::ctl {

enum class Colour { off, on };

// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
[[nodiscard]] Colour colour_for(int fd, const char* no_color_env);

// "45s", "3m12s", "2h5m", "3d4h": the two largest units, seconds truncated.
[[nodiscard]] std::string format_uptime(double seconds);
// "812 B", "4.0 KiB", "12.3 MiB", "1.5 GiB".
[[nodiscard]] std::string format_bytes(std::uint64_t bytes);

// The whole table, ending in a newline. Deterministic for a given snapshot.
// "8 workers: 412.0 MiB private + 96.0 MiB shared (PSS 508.0 MiB); master 0.4 MiB private",
// or "" when there is nothing to add up.
[[nodiscard]] std::string memory_summary(const control::MemorySummary& memory);
[[nodiscard]] std::string render_status(const control::StatusSnapshot& status, Colour colour);

}  // namespace preforkd::ctl
