// Listen addresses as written in the config: IPv4, [IPv6] and unix:/path.

#include <catch2/catch.hpp>
#include <preforkd/core/address.hpp>
#include <string>
#include <utility>
#include <vector>

using preforkd::Address;
using preforkd::AddressFamily;
using preforkd::parse_address;

namespace {

Address must_parse(const std::string& text) {
  INFO(text);
  std::string why;
  const auto a = parse_address(text, &why);
  INFO(why);
  REQUIRE(a.has_value());
  CHECK(a->text == text);
  return *a;
}

}  // namespace

TEST_CASE("IPv4 addresses", "[address]") {
  const Address a = must_parse("127.0.0.1:8080");
  CHECK(a.family == AddressFamily::ipv4);
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 8080);
  CHECK(a.path.empty());

  CHECK(must_parse("0.0.0.0:80").host == "0.0.0.0");
  CHECK(must_parse("10.1.2.3:65535").port == 65535);
  CHECK(must_parse("10.1.2.3:1").port == 1);
}

TEST_CASE("a star and an empty host mean every IPv4 address", "[address]") {
  for (const std::string text : {"*:80", ":80"}) {
    const Address a = must_parse(text);
    CHECK(a.family == AddressFamily::ipv4);
    CHECK(a.host == "0.0.0.0");
    CHECK(a.port == 80);
  }
}

TEST_CASE("IPv6 addresses are bracketed and stored in canonical form", "[address]") {
  const Address a = must_parse("[::1]:8080");
  CHECK(a.family == AddressFamily::ipv6);
  CHECK(a.host == "::1");
  CHECK(a.port == 8080);

  CHECK(must_parse("[::]:80").host == "::");
  CHECK(must_parse("[0:0:0:0:0:0:0:1]:443").host == "::1");
  CHECK(must_parse("[2001:DB8::5]:443").host == "2001:db8::5");
  CHECK(must_parse("[::ffff:127.0.0.1]:80").host == "::ffff:127.0.0.1");
}

TEST_CASE("unix socket paths", "[address]") {
  const Address a = must_parse("unix:/run/app.sock");
  CHECK(a.family == AddressFamily::unix_path);
  CHECK(a.path == "/run/app.sock");
  CHECK(a.host.empty());
  CHECK(a.port == 0);

  const std::string longest = "/" + std::string(106, 'a');
  CHECK(must_parse("unix:" + longest).path == longest);
}

TEST_CASE("bad addresses say why", "[address]") {
  const std::vector<std::pair<std::string, std::string>> bad{
      {"", R"(address is empty; expected "127.0.0.1:8080", "[::1]:8080" or "unix:/path")"},
      {"127.0.0.1", R"(missing port; expected host:port such as "127.0.0.1:8080")"},
      {"127.0.0.1:", R"(missing port; expected host:port such as "127.0.0.1:8080")"},
      {"127.0.0.1:0", "port must be 1..65535, got 0"},
      {"127.0.0.1:70000", "port must be 1..65535, got 70000"},
      {"127.0.0.1:99999999999999999999", "port must be 1..65535, got 99999999999999999999"},
      {"127.0.0.1:http", R"(port must be 1..65535, got "http")"},
      {"127.0.0.1:-1", R"(port must be 1..65535, got "-1")"},
      {"example.com:80", "host must be a numeric IPv4 or [IPv6] address, got example.com"},
      {"localhost:80", "host must be a numeric IPv4 or [IPv6] address, got localhost"},
      {"256.0.0.1:80", "host must be a numeric IPv4 or [IPv6] address, got 256.0.0.1"},
      {"::1:8080", R"(an IPv6 host needs brackets, e.g. "[::1]:8080")"},
      {"[::1]", R"(missing port; expected [host]:port such as "[::1]:8080")"},
      {"[::1]8080", R"(missing port; expected [host]:port such as "[::1]:8080")"},
      {"[::1:8080", R"(missing ']' after the IPv6 host; expected "[::1]:8080")"},
      {"[127.0.0.1]:80", "host must be a numeric IPv6 address inside [], got 127.0.0.1"},
      {"[fe80::1%eth0]:80", "host must be a numeric IPv6 address inside [], got fe80::1%eth0"},
      {"[::1]:0", "port must be 1..65535, got 0"},
      {"unix:", R"(unix socket path is missing; expected "unix:/path/to.sock")"},
      {"unix:app.sock", R"(unix socket path must be absolute, got "app.sock")"},
      {"unix:/" + std::string(107, 'a'), "unix socket path is 108 bytes long; the limit is 107"},
      {std::string("127.0.0.1\0:80", 13), "address must not contain a NUL character"},
  };
  for (const auto& [text, expected] : bad) {
    INFO(text);
    std::string why;
    CHECK_FALSE(parse_address(text, &why).has_value());
    CHECK(why == expected);
  }
}

TEST_CASE("parse_address works without a why", "[address]") {
  CHECK(parse_address("127.0.0.1:80").has_value());
  CHECK_FALSE(parse_address("nope").has_value());
}
