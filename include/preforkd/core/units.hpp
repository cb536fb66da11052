#pragma once
// Durations ("100ms", "30s", "5m", "6h") and sizes ("512MiB") as written in the config.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace preforkd {

using Duration = std::chrono::milliseconds;

// Parses a duration with a unit: ms, s, m, h; compound forms such as "1m30s" are accepted,
// and decimal fractions ("1.5s") when they come out as whole milliseconds. No sign, no spaces.
// Returns nullopt when the text is not a duration; `why` then says what was wrong.
[[nodiscard]] std::optional<Duration> parse_duration(std::string_view text, std::string* why = nullptr);

// Parses a size with a unit: B, KiB, MiB, GiB (binary multiples); "1GiB512MiB" and "1.5GiB"
// work as for durations.
[[nodiscard]] std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why = nullptr);

// "1s500ms", "250ms", "2m", "1h30m", "0s": units from largest to smallest, zero terms left out.
// Always exact, and parse_duration() reads it back; chosen over "1.5s" because it never needs
// rounding.
[[nodiscard]] std::string format_duration(Duration d);

}  // namespace preforkd
