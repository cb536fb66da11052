#pragma once
// The little HTTP/1.x the metrics endpoint speaks: find the end of a request head, read
// its request line, decide the answer, and write a response. Pure: the server in
// daemon/metrics_server does the I/O.

#include <preforkd/core/limits.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace preforkd::http {

// The longest request head, its blank line included; a longer one is refused with 431.
inline constexpr std::size_t max_head_bytes = limits::metrics_head_bytes;

// Where the head ends in `buffer` (the index after "\r\n\r\n" or "\n\n"), or nullopt
// while it is incomplete.
[[nodiscard]] std::optional<std::size_t> head_end(std::string_view buffer);

// What the bytes received so far hold, whatever the reads they came in: a complete head of
// at most max_head_bytes (`length` bytes, the rest is after it), a head still incomplete and
// under the limit, or a head over it (complete or not: its end is past the limit).
struct HeadScan {
  enum class Kind { complete, incomplete, too_large };
  Kind kind = Kind::incomplete;
  std::size_t length = 0;  // complete: the head's length
  bool operator==(const HeadScan&) const = default;
};
[[nodiscard]] HeadScan scan_head(std::string_view buffer);

struct Response {
  int status = 200;
  std::string content_type;  // "" for none
  std::string body;
  bool head_only = false;  // a HEAD request: the headers of a GET, no body
  std::string allow;       // the Allow header of a 405
};

// The answer to one request head (ending with its blank line) for a server that serves
// GET and HEAD of `path` (a query string is ignored): 200 with `body` from make_body(),
// 400 for anything that is not an HTTP/1.0 or 1.1 request head, 404 for another path,
// 405 for another method. make_body is called only for a 200.
template <class MakeBody>
Response answer(std::string_view head, std::string_view path, std::string_view content_type, MakeBody&& make_body);

// The status of a request head before routing: 0 when it is well-formed, else 400, 404 or
// 405; `head_only` set for HEAD. Behind answer(), and tested on its own.
struct Routed {
  int status = 400;
  bool head_only = false;
};
[[nodiscard]] Routed route(std::string_view head, std::string_view path);

// A plain-text answer with the status's reason phrase as its body (404 Not Found, ...).
[[nodiscard]] Response error_response(int status);

// "Not Found" for 404, ...
[[nodiscard]] std::string_view reason_phrase(int status);

// The response on the wire: status line, Content-Type, Content-Length, Connection: close,
// Allow (for a 405), then the body unless head_only.
[[nodiscard]] std::string serialize(const Response& response);

template <class MakeBody>
Response answer(std::string_view head, std::string_view path, std::string_view content_type, MakeBody&& make_body) {
  const Routed r = route(head, path);
  if (r.status != 200) return error_response(r.status);
  Response ok;
  ok.content_type = std::string(content_type);
  ok.body = make_body();
  ok.head_only = r.head_only;
  return ok;
}

}  // namespace preforkd::http
