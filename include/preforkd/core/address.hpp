#pragma once
// A listen address as written in the config: "127.0.0.1:8080", "[::1]:8080", "unix:/path".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace preforkd {

enum class AddressFamily { ipv4, ipv6, unix_path };

struct Address {
  AddressFamily family = AddressFamily::ipv4;
  std::string host;  // numeric IPv4/IPv6 host, empty for unix
  std::uint16_t port = 0;
  std::string path;  // unix socket path
  std::string text;  // as written
};

// Parses an address; nullopt with `why` set when it is not one of the three forms.
// Hosts must be numeric (no DNS at start-up); "*" and "" mean 0.0.0.0, "[::]" all IPv6.
[[nodiscard]] std::optional<Address> parse_address(std::string_view text, std::string* why = nullptr);

}  // namespace preforkd
