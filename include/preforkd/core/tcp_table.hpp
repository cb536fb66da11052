#pragma once
// Lines of the kernel's TCP socket tables, /proc/net/tcp and /proc/net/tcp6: which
// sockets listen on which address, and their inodes (to find the process holding one).

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace preforkd {

enum class TcpTable { v4, v6 };  // /proc/net/tcp, /proc/net/tcp6

// A local address as the tables print it: 4 (IPv4) or 16 (IPv6) bytes in network order.
struct TcpEndpoint {
  TcpTable table = TcpTable::v4;
  std::array<std::uint8_t, 16> bytes{};
  std::uint16_t port = 0;
  bool operator==(const TcpEndpoint&) const = default;
};

struct TcpSocketLine {
  TcpEndpoint local;
  bool listening = false;  // state 0A (TCP_LISTEN)
  std::uint64_t inode = 0;
};

// One line of the table (nullopt for the header or a line that does not parse):
//   "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000  0 12345 ..."
// The kernel prints each 32-bit word of the address with %08X in host byte order.
[[nodiscard]] std::optional<TcpSocketLine> parse_tcp_line(std::string_view line, TcpTable table);

// Whether a socket listening on `held` takes connections for `wanted` too: the same port
// and the same address, or either address is the wildcard of its family; an IPv6
// wildcard ("::", unless it is IPv6-only, which the table does not show) and an
// IPv4-mapped address (::ffff:a.b.c.d) overlap IPv4 addresses as well.
[[nodiscard]] bool endpoints_overlap(const TcpEndpoint& held, const TcpEndpoint& wanted);

}  // namespace preforkd
