#include <preforkd/core/limits.hpp>
#include <preforkd/core/message_text.hpp>

#include <fmt/format.h>

namespace preforkd {
namespace {

// How a control character other than \n, \t and \r is written: TOML's \uXXXX inside a quoted
// value, \xNN in free text.
enum class ControlEscape { toml, hex };

// Appends `c`, with line breaks, tabs and control characters written as escapes, so that a
// message stays on one line.
void append_escaped(std::string& out, char c, ControlEscape style) {
  const auto u = static_cast<unsigned char>(c);
  if (c == '\n') {
    out += "\\n";
  } else if (c == '\t') {
    out += "\\t";
  } else if (c == '\r') {
    out += "\\r";
  } else if (u < 0x20 || u == 0x7f) {
    out += style == ControlEscape::toml ? fmt::format("\\u{:04X}", u) : fmt::format("\\x{:02x}", u);
  } else {
    out += c;
  }
}

}  // namespace

std::string quoted(std::string_view text) {
  // A long value (a 1 MB string) would make a 1 MB error line: show its start and its size.
  const bool cut = text.size() > limits::echoed_bytes;
  const std::string_view shown = cut ? text.substr(0, limits::echoed_bytes) : text;
  std::string out = "\"";
  for (const char c : shown) {
    if (c == '"' || c == '\\') out += '\\';
    append_escaped(out, c, ControlEscape::toml);
  }
  out += '"';
  if (cut) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

// The last guard of "one error, one line": any control character left in a message (from
// toml++'s own descriptions, a file name, ...) is printed as an escape.
std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) append_escaped(out, c, ControlEscape::hex);
  return out;
}

std::string plural(std::int64_t n, std::string_view one, std::string_view many) {
  if (n == 1) return fmt::format("1 {}", one);
  if (many.empty()) return fmt::format("{} {}s", n, one);
  return fmt::format("{} {}", n, many);
}

}  // namespace preforkd
