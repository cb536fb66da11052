#pragma once
// Durations ("100ms", "30s", "5m", "6h") and sizes ("512MiB") as written in the config.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace preforkd {

using Duration = std::chrono::milliseconds;

// Parses a duration with a unit: ms, s, m, h; compound forms such as "1m30s" are accepted.
// Returns nullopt when the text is not a duration; `why` then says what was wrong.
[[nodiscard]] std::optional<Duration> parse_duration(std::string_view text, std::string* why = nullptr);

// Parses a size with a unit: B, KiB, MiB, GiB (binary multiples).
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why = nullptr);

// "1.5s", "250ms", "2m", "1h30m": the shortest exact form, for logs and status.
[[nodiscard]] std::string format_duration(Duration d);

}  // namespace preforkd
