#include <preforkd/core/http_request.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace preforkd::http {
namespace {

// A token character (RFC 9110): what a method and a header name are made of.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

// No control characters (but tab) and no bytes above 0x7e outside of field values.
bool visible(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f;
  });
}

std::string_view without_cr(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  return line;
}

}  // namespace

std::optional<std::size_t> head_end(std::string_view buffer) {
  const auto crlf = buffer.find("\r\n\r\n");
  const auto lf = buffer.find("\n\n");
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return std::nullopt;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf < lf)) return crlf + 4;
  return lf + 2;
}

HeadScan scan_head(std::string_view buffer) {
  // Only the first max_head_bytes may hold the end: what arrived after them (one large
  // read) counts the same as what would have arrived later (a trickle).
  const auto end = head_end(buffer.substr(0, max_head_bytes));
  if (end) return {HeadScan::Kind::complete, *end};
  if (buffer.size() >= max_head_bytes) return {HeadScan::Kind::too_large, 0};
  return {HeadScan::Kind::incomplete, 0};
}

Routed route(std::string_view head, std::string_view path) {
  Routed bad;
  const auto eol = head.find('\n');
  if (eol == std::string_view::npos) return bad;
  const std::string_view line = without_cr(head.substr(0, eol));
  // METHOD SP request-target SP HTTP-version, single spaces.
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return bad;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return bad;
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || target.empty() || !visible(target)) return bad;
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return bad;
  // Header lines: name ":" value, the name a token; the head ends with an empty line.
  std::string_view rest = head.substr(eol + 1);
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    const std::string_view field = without_cr(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (field.empty()) break;
    const auto colon = field.find(':');
    if (colon == std::string_view::npos || !is_token(field.substr(0, colon))) return bad;
    const std::string_view value = field.substr(colon + 1);
    if (std::any_of(value.begin(), value.end(), [](char c) {
          const auto u = static_cast<unsigned char>(c);
          return (u < 0x20 && c != '\t') || u == 0x7f;
        }))
      return bad;
  }
  Routed r;
  // The path is compared without its query: Prometheus may add one (?name[]=...).
  const std::string_view target_path = target.substr(0, target.find('?'));
  if (method != "GET" && method != "HEAD") {
    r.status = 405;
  } else if (target_path != path) {
    r.status = 404;
  } else {
    r.status = 200;
    r.head_only = method == "HEAD";
  }
  return r;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

Response error_response(int status) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = fmt::format("{} {}\n", status, reason_phrase(status));
  if (status == 405) r.allow = "GET, HEAD";
  return r;
}

std::string serialize(const Response& response) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", response.status, reason_phrase(response.status));
  if (!response.content_type.empty()) out += fmt::format("Content-Type: {}\r\n", response.content_type);
  out += fmt::format("Content-Length: {}\r\n", response.body.size());
  if (!response.allow.empty()) out += fmt::format("Allow: {}\r\n", response.allow);
  out += "Connection: close\r\n\r\n";
  if (!response.head_only) out += response.body;
  return out;
}

}  // namespace preforkd::http
