#pragma once
// User text inside a message: one home for how it is escaped, so that no value a config or a
// client sends can split a log line or a reply across lines, or make it huge.

#include <cstdint>
#include <string>
#include <string_view>

namespace preforkd {

// As a TOML basic string: "text", with `"`, `\`, newlines, tabs and other control characters
// escaped; past limits::echoed_bytes it is cut and its size given: "TTT..."... (1000000 bytes).
[[nodiscard]] std::string quoted(std::string_view text);

// The text on one line: newlines, tabs and other control characters escaped (\n, \t, \x1b);
// nothing else changed and nothing cut.
[[nodiscard]] std::string one_line(std::string_view text);

// A count with its noun: plural(1, "worker") is "1 worker", plural(2, "worker") "2 workers";
// `many` for a plural that is not the noun plus "s": plural(3, "process", "processes").
[[nodiscard]] std::string plural(std::int64_t n, std::string_view one, std::string_view many = {});

}  // namespace preforkd
