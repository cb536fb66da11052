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

// A duration as people write it, for what preforkd measured or computed (a backoff with
// jitter, a time waited): under 1 s in milliseconds ("250ms"), under a minute in seconds
// with at most two decimals ("1.49s", "30s"), above that in h/m/s rounded to the second
// ("2m30s", "1h30m"); "0s" for zero. parse_duration() reads every form back.
[[nodiscard]] std::string format_duration(Duration d);

// The same layout, exact to the millisecond ("1.489s", "1m30.5s"), for a message that echoes a
// config value: it shows what the config holds, in a form the config takes.
[[nodiscard]] std::string exact_duration(Duration d);

}  // namespace preforkd
