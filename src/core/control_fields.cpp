#include "control_fields.hpp"

#include <preforkd/core/limits.hpp>
#include <preforkd/core/message_text.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>

namespace preforkd::control::detail {

using nlohmann::json;

// Built by appending: GCC 12 at -O3 reports a false -Werror=restrict for "'" + std::string&&.
std::string echoed(std::string_view text) {
  constexpr std::size_t max_echo = 64;
  std::size_t cut = text.size();
  if (cut > max_echo) {
    cut = max_echo;
    // Cut on a character boundary, so the message stays valid UTF-8 for the JSON reply.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  }
  // Control characters are escaped: preforkctl prints the message to a terminal, on one line.
  std::string out(1, '\'');
  out.append(one_line(text.substr(0, cut)));
  if (cut < text.size()) out.append("...");
  out.push_back('\'');
  return out;
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the tag helps no one.
std::string without_tag(const char* what) {
  std::string_view text(what);
  if (text.starts_with("[json.exception.")) {
    const auto end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return std::string(text);
}

std::optional<std::int64_t> integer(const json& j) {
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (j.is_number_integer()) return j.get<std::int64_t>();
  return std::nullopt;
}

std::optional<std::int64_t> integer_text(std::string_view text) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

Status check_scale(const ScaleTarget& t) {
  switch (t.kind) {
    case ScaleTarget::Kind::absolute:
      if (t.value < 1 || t.value > max_workers)
        return Error{"scale: count must be from 1 to " + std::to_string(max_workers) + ", got " +
                     std::to_string(t.value)};
      return Ok{};
    case ScaleTarget::Kind::delta:
      if (t.value == 0 || t.value < -max_workers || t.value > max_workers)
        return Error{"scale: delta must be from -" + std::to_string(max_workers) + " to +" +
                     std::to_string(max_workers) + " and not 0, got " + std::to_string(t.value)};
      return Ok{};
  }
  return Ok{};
}

Result<int> slot_number(std::optional<std::int64_t> v, std::string_view shown, std::string_view command) {
  if (!v || *v < 0 || *v >= max_workers)
    return Error{std::string(command) + (command == "restart" ? ": expected 'all' or slot" : ": expected slot") +
                 " numbers from 0 to " + std::to_string(max_workers - 1) +
                 ", got " + echoed(shown)};
  return static_cast<int>(*v);
}

void normalise(std::vector<int>& slots) {
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
}

std::optional<Request::Command> command_named(std::string_view name) {
  using C = Request::Command;
  for (const C c : {C::status, C::reload, C::scale, C::restart, C::stop, C::upgrade, C::logs}) {
    if (name == to_string(c)) return c;
  }
  return std::nullopt;
}

Status check_log_lines(std::optional<std::int64_t> n, std::string_view shown) {
  if (!n || *n < 0 || *n > max_log_lines)
    return Error{"logs: the number of lines must be from 0 to " + std::to_string(max_log_lines) + ", got " +
                 echoed(shown)};
  return Ok{};
}

}  // namespace preforkd::control::detail
