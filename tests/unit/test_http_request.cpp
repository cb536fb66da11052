// The metrics endpoint's HTTP: where a request head ends, how it is answered, and the
// response on the wire.

#include <preforkd/core/http_request.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using namespace preforkd;

TEST_CASE("http: the head ends at the first blank line", "[http]") {
  CHECK_FALSE(http::head_end(""));
  CHECK_FALSE(http::head_end("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
  CHECK(http::head_end("GET / HTTP/1.1\r\n\r\n") == 18u);
  CHECK(http::head_end("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody") == 27u);
  CHECK(http::head_end("GET / HTTP/1.0\n\n") == 16u);
}

TEST_CASE("http: requests are routed to 200 or 400 or 404 or 405", "[http]") {
  struct Case {
    const char* head;
    int status;
    bool head_only;
  };
  const Case cases[] = {
      {"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nAccept: */*\r\n\r\n", 200, false},
      {"GET /metrics HTTP/1.0\r\n\r\n", 200, false},
      {"GET /metrics?name[]=x HTTP/1.1\r\n\r\n", 200, false},
      {"GET /metrics HTTP/1.1\nUser-Agent: Prometheus/2.42.0\n\n", 200, false},
      {"HEAD /metrics HTTP/1.1\r\n\r\n", 200, true},
      {"GET / HTTP/1.1\r\n\r\n", 404, false},
      {"GET /metricsx HTTP/1.1\r\n\r\n", 404, false},
      {"GET /metrics/ HTTP/1.1\r\n\r\n", 404, false},
      {"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, false},
      {"DELETE / HTTP/1.1\r\n\r\n", 405, false},
      {"\r\n\r\n", 400, false},
      {"hello\r\n\r\n", 400, false},
      {"GET /metrics\r\n\r\n", 400, false},                     // HTTP/0.9
      {"GET /metrics HTTP/2.0\r\n\r\n", 400, false},
      {"GET  /metrics HTTP/1.1\r\n\r\n", 400, false},           // two spaces
      {"GET /met rics HTTP/1.1\r\n\r\n", 400, false},
      {"G(T /metrics HTTP/1.1\r\n\r\n", 400, false},
      {"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400, false},
      {"GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, false},
      {"GET /metrics HTTP/1.1\r\nX: a\x01z\r\n\r\n", 400, false},
      {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, false},  // a TLS hello
  };
  for (const auto& c : cases) {
    INFO(c.head);
    const http::Routed r = http::route(c.head, "/metrics");
    CHECK(r.status == c.status);
    CHECK(r.head_only == c.head_only);
  }
}

TEST_CASE("http: answers on the wire", "[http]") {
  int rendered = 0;
  const auto body = [&rendered] {
    ++rendered;
    return std::string("m 1\n");
  };
  const http::Response ok = http::answer("GET /metrics HTTP/1.1\r\n\r\n", "/metrics", "text/plain; version=0.0.4", body);
  CHECK(http::serialize(ok) ==
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 4\r\n"
        "Connection: close\r\n\r\nm 1\n");
  const http::Response head = http::answer("HEAD /metrics HTTP/1.1\r\n\r\n", "/metrics", "t", body);
  CHECK(http::serialize(head) == "HTTP/1.1 200 OK\r\nContent-Type: t\r\nContent-Length: 4\r\nConnection: close\r\n\r\n");
  CHECK(rendered == 2);
  const http::Response nope = http::answer("PUT /metrics HTTP/1.1\r\n\r\n", "/metrics", "t", body);
  CHECK(rendered == 2);  // no body is rendered for an error
  CHECK(http::serialize(nope) ==
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n"
        "Allow: GET, HEAD\r\nConnection: close\r\n\r\n405 Method Not Allowed\n");
  CHECK(http::serialize(http::error_response(404)).starts_with("HTTP/1.1 404 Not Found\r\n"));
  CHECK(http::serialize(http::error_response(400)).starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(http::serialize(http::error_response(431)).starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
}

namespace {

// A GET /metrics head of exactly `bytes` bytes (blank line included), filled with headers.
std::string head_of(std::size_t bytes) {
  std::string head = "GET /metrics HTTP/1.1\r\n";
  const std::string end = "\r\n";
  while (head.size() + end.size() < bytes) {
    const std::size_t room = bytes - head.size() - end.size();
    // "X: " + value + "\r\n": at least 6 bytes; leave at least 6 for the next one.
    const std::size_t line = room <= 1000 + 6 ? room : 1000;
    head += "X: " + std::string(line - 5, 'a') + "\r\n";
  }
  return head + end;
}

// The scan after the bytes arrived in reads of `step` bytes (0: all in one), as the
// server sees them: the first result that is not "incomplete".
http::HeadScan scan_arriving(const std::string& bytes, std::size_t step) {
  std::string buffer;
  http::HeadScan scan;
  for (std::size_t at = 0; at < bytes.size();) {
    const std::size_t n = step == 0 ? bytes.size() : std::min(step, bytes.size() - at);
    buffer.append(bytes, at, n);
    at += n;
    scan = http::scan_head(buffer);
    if (scan.kind != http::HeadScan::Kind::incomplete) return scan;
  }
  return scan;
}

}  // namespace

TEST_CASE("http: one head limit whatever the reads it arrives in", "[http]") {
  using Kind = http::HeadScan::Kind;
  REQUIRE(http::max_head_bytes == 8192u);
  struct Case {
    std::size_t bytes;
    Kind kind;
  };
  const Case cases[] = {
      {100, Kind::complete},   {8000, Kind::complete},  {8191, Kind::complete},   {8192, Kind::complete},
      {8193, Kind::too_large}, {8999, Kind::too_large}, {12279, Kind::too_large}, {65536, Kind::too_large},
  };
  for (const Case& c : cases) {
    const std::string head = head_of(c.bytes);
    REQUIRE(head.size() == c.bytes);
    for (const std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4096}}) {
      INFO("head of " << c.bytes << " bytes, reads of " << step << " bytes (0: one read)");
      const http::HeadScan scan = scan_arriving(head + "trailing bytes", step);
      CHECK(scan.kind == c.kind);
      if (c.kind == Kind::complete) CHECK(scan.length == c.bytes);
    }
  }
  // Without its end: incomplete under the limit, too large at it.
  CHECK(http::scan_head(std::string(8191, 'a')).kind == Kind::incomplete);
  CHECK(http::scan_head(std::string(8192, 'a')).kind == Kind::too_large);
  CHECK(http::scan_head("").kind == Kind::incomplete);
}
