#pragma once
// Private to the control protocol: the checks and the error wording shared by its JSON form
// (control_protocol.cpp), its command-line form (control_args.cpp) and the replies it reads
// (control_reply.cpp, status_snapshot.cpp), so the two forms refuse the same things alike.

#include <preforkd/core/control_request.hpp>
#include <preforkd/core/result.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::control::detail {

// Text a client sent, quoted for an error message and cut short: an error reply must not
// echo a 64 KiB request back.
[[nodiscard]] std::string echoed(std::string_view text);

// nlohmann's messages start with "[json.exception.parse_error.101] "; the tag helps no one.
[[nodiscard]] std::string without_tag(const char* what);

// A JSON integer that fits in 64 bits; nullopt for anything else.
[[nodiscard]] std::optional<std::int64_t> integer(const nlohmann::json& j);
// Decimal digits (with an optional sign) and nothing else; nullopt otherwise.
[[nodiscard]] std::optional<std::int64_t> integer_text(std::string_view text);

[[nodiscard]] Status check_scale(const ScaleTarget& t);
// A slot number from 0 to max_workers - 1, or an error worded for `command`.
[[nodiscard]] Result<int> slot_number(std::optional<std::int64_t> v, std::string_view shown,
                                      std::string_view command = "restart");
// Sorted, without duplicates.
void normalise(std::vector<int>& slots);
[[nodiscard]] std::optional<Request::Command> command_named(std::string_view name);
[[nodiscard]] Status check_log_lines(std::optional<std::int64_t> n, std::string_view shown);

}  // namespace preforkd::control::detail
