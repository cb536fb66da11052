#include <preforkd/core/limits.hpp>
#include <preforkd/core/message_text.hpp>

#include <fmt/format.h>

namespace preforkd {

std::string quoted(std::string_view text) {
  // A long value (a 1 MB string) would make a 1 MB error line: show its start and its size.
  const bool cut = text.size() > limits::echoed_bytes;
  const std::string_view shown = cut ? text.substr(0, limits::echoed_bytes) : text;
  std::string out = "\"";
  for (const char c : shown) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u == 0x7f) {
      // Control characters would garble the one-line message; print them as TOML escapes.
      out += fmt::format("\\u{:04X}", u);
    } else {
      out += c;
    }
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
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace preforkd
