#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <preforkd/core/address.hpp>

namespace preforkd {
namespace {

// sizeof(sockaddr_un::sun_path) is 108, and the path needs its terminating NUL.
constexpr std::size_t max_unix_path = 107;
constexpr std::string_view unix_prefix = "unix:";

bool fail(std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
  return false;
}

// The canonical text of a numeric host (e.g. "0:0::1" -> "::1"); nullopt if not numeric.
std::optional<std::string> canonical_host(int family, const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(family, host.c_str(), buf) != 1) return std::nullopt;
  char out[INET6_ADDRSTRLEN];
  if (inet_ntop(family, buf, out, sizeof out) == nullptr) return std::nullopt;
  return std::string(out);
}

bool parse_port(std::string_view text, Address& a, std::string* why) {
  if (text.empty()) return fail(why, "missing port; expected host:port such as \"127.0.0.1:8080\"");
  // Checked digit by digit, so a long run of digits cannot overflow.
  unsigned long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return fail(why, fmt::format("port must be 1..65535, got \"{}\"", text));
    value = value * 10 + static_cast<unsigned long>(c - '0');
    if (value > 65535) return fail(why, fmt::format("port must be 1..65535, got {}", text));
  }
  if (value == 0) return fail(why, fmt::format("port must be 1..65535, got {}", text));
  a.port = static_cast<std::uint16_t>(value);
  return true;
}

bool parse_unix(std::string_view path, Address& a, std::string* why) {
  if (path.empty()) return fail(why, "unix socket path is missing; expected \"unix:/path/to.sock\"");
  if (path.front() != '/') {
    return fail(why, fmt::format("unix socket path must be absolute, got \"{}\"", path));
  }
  if (path.size() > max_unix_path) {
    return fail(why, fmt::format("unix socket path is {} bytes long; the limit is {}", path.size(), max_unix_path));
  }
  a.family = AddressFamily::unix_path;
  a.path = std::string(path);
  return true;
}

// "[host]:port"
bool parse_ipv6(std::string_view text, Address& a, std::string* why) {
  const std::size_t close = text.find(']');
  if (close == std::string_view::npos) {
    return fail(why, "missing ']' after the IPv6 host; expected \"[::1]:8080\"");
  }
  const std::string host(text.substr(1, close - 1));
  const auto canonical = canonical_host(AF_INET6, host);
  if (!canonical) {
    return fail(why, fmt::format("host must be a numeric IPv6 address inside [], got {}", host));
  }
  const std::string_view after = text.substr(close + 1);
  if (after.empty() || after.front() != ':') {
    return fail(why, "missing port; expected [host]:port such as \"[::1]:8080\"");
  }
  a.family = AddressFamily::ipv6;
  a.host = *canonical;
  return parse_port(after.substr(1), a, why);
}

// "host:port", where host may be "*" or empty for every IPv4 address.
bool parse_ipv4(std::string_view text, Address& a, std::string* why) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return fail(why, "missing port; expected host:port such as \"127.0.0.1:8080\"");
  }
  std::string host(text.substr(0, colon));
  if (host.find(':') != std::string::npos) {
    return fail(why, fmt::format("an IPv6 host needs brackets, e.g. \"[{}]:{}\"", host, text.substr(colon + 1)));
  }
  if (host.empty() || host == "*") host = "0.0.0.0";
  const auto canonical = canonical_host(AF_INET, host);
  if (!canonical) {
    return fail(why, fmt::format("host must be a numeric IPv4 or [IPv6] address, got {}", host));
  }
  a.family = AddressFamily::ipv4;
  a.host = *canonical;
  return parse_port(text.substr(colon + 1), a, why);
}

}  // namespace

std::optional<Address> parse_address(std::string_view text, std::string* why) {
  Address a;
  a.text = std::string(text);
  bool ok = false;
  if (text.empty()) {
    ok = fail(why, "address is empty; expected \"127.0.0.1:8080\", \"[::1]:8080\" or \"unix:/path\"");
  } else if (text.find('\0') != std::string_view::npos) {
    // inet_pton() and sun_path would silently stop at the NUL.
    ok = fail(why, "address must not contain a NUL character");
  } else if (text.starts_with(unix_prefix)) {
    ok = parse_unix(text.substr(unix_prefix.size()), a, why);
  } else if (text.front() == '[') {
    ok = parse_ipv6(text, a, why);
  } else {
    ok = parse_ipv4(text, a, why);
  }
  if (!ok) return std::nullopt;
  return a;
}

}  // namespace preforkd
