#pragma once
// Who already listens on a TCP address: the sockets in /proc/net/tcp{,6} and the
// processes (from /proc/<pid>/fd) that hold them. Used to refuse a taken port with a
// message naming its holder, and to tell the master's own sockets from others'.

#include <preforkd/core/tcp_table.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/socket.h>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

// The endpoint of a bound IPv4 or IPv6 address (nullopt for other families).
[[nodiscard]] std::optional<TcpEndpoint> endpoint_of(const sockaddr* sa);

// Who uses `wanted` now (listeners and TIME_WAIT connections), from both tables.
// Unreadable tables give nothing.
[[nodiscard]] AddressUse address_use_now(const TcpEndpoint& wanted);

// The inodes of the listening TCP sockets whose address overlaps `wanted`
// (see endpoints_overlap), from both tables. Unreadable tables give nothing.
[[nodiscard]] std::vector<std::uint64_t> listening_inodes(const TcpEndpoint& wanted);

struct PortHolder {
  pid_t pid = 0;
  std::string program;  // /proc/<pid>/comm; empty when unreadable
};

// The processes with an fd on one of `inodes`, by pid, as far as /proc lets this process
// see (other users' fds need privilege).
[[nodiscard]] std::vector<PortHolder> socket_holders(const std::vector<std::uint64_t>& inodes);

// "pid 1234 (nginx), pid 1240 (nginx)": at most `limit` named, then "and 3 more".
[[nodiscard]] std::string describe_holders(const std::vector<PortHolder>& holders, std::size_t limit = 4);

// Whether a socket without SO_REUSEPORT could bind `sa` now (a probe bound with
// SO_REUSEADDR, then closed). EADDRINUSE means a socket listens on an overlapping
// address (TIME_WAIT connections do not count); other errors come back as errno.
enum class ProbeResult { free, in_use, failed };
[[nodiscard]] ProbeResult probe_bind(const sockaddr* sa, socklen_t len, int* err);

}  // namespace preforkd::os
