#pragma once
// Lines of the kernel's TCP socket tables, /proc/net/tcp and /proc/net/tcp6: which
// sockets listen on which address, and their inodes (to find the process holding one).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  bool time_wait = false;  // state 06 (TCP_TIME_WAIT): a closed connection the kernel keeps
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

// Who uses an address, from the lines of both tables: the inodes of the sockets listening
// on an overlapping address, and the connections in TIME_WAIT on one.
struct AddressUse {
  std::vector<std::uint64_t> listening;
  std::size_t time_wait = 0;
};
[[nodiscard]] AddressUse address_use(const std::vector<TcpSocketLine>& table, const TcpEndpoint& wanted);

// Why a bind of an address failed with EADDRINUSE when nothing listens on it but
// connections in TIME_WAIT are: "3 connections in TIME_WAIT …" (those of a socket without
// SO_REUSEADDR hold the address until the kernel drops them, 60 s after their close).
// nullopt when a listener holds it or no TIME_WAIT connection is there.
[[nodiscard]] std::optional<std::string> time_wait_cause(const AddressUse& use);

}  // namespace preforkd
