#pragma once
// The control socket's replies: {"ok":true,...} or {"ok":false,"error":"..."}, and the lines
// of worker output a logs reply carries.

#include <preforkd/core/result.hpp>

#include <nlohmann/json.hpp>

#include <preforkd/core/output_ring.hpp>

#include <string>
#include <string_view>

namespace preforkd::control {

// {"ok":true} plus the members of `extra` (an object, or null for none).
[[nodiscard]] nlohmann::json make_ok(nlohmann::json extra = nullptr);
[[nodiscard]] nlohmann::json make_error(std::string_view message);

struct Reply {
  bool ok = false;
  std::string error;   // set when !ok
  nlohmann::json body;  // the whole reply object
};

// Reads a reply line. A line that is not a reply object is an error (not a Reply with
// ok == false), so the client can tell a refusal from a broken conversation.
[[nodiscard]] Result<Reply> parse_reply(std::string_view line);

// One line of worker output in a logs reply: {"time","slot","pid","stream","text"}.
[[nodiscard]] nlohmann::json log_line_json(const OutputLine& line);
[[nodiscard]] Result<OutputLine> parse_log_line(const nlohmann::json& j);

}  // namespace preforkd::control
