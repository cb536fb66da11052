#pragma once
// A [[listen]] entry's socket options (defer_accept, fastopen and the ones named after
// systemd.socket(5): keep_alive*, receive_buffer, send_buffer, no_delay, free_bind,
// bind_ipv6_only, bind_to_device) set on a TCP listening socket. Accepted connections
// inherit every one but the bind options (checked on Linux 6.x, TCP_NODELAY included).

#include <optional>
#include <preforkd/core/config.hpp>
#include <string>

namespace preforkd::os {

// An option the kernel refused: which one, as "SO_KEEPALIVE (keep_alive)", and the errno.
struct OptionFailure {
  std::string option;
  int err = 0;
};

// The options that act at bind(): IPV6_V6ONLY (IPv6 sockets), IP_FREEBIND/IPV6_FREEBIND
// and SO_BINDTODEVICE. Set between socket() and bind().
[[nodiscard]] std::optional<OptionFailure> apply_bind_options(const ListenConfig& l, int fd);

// The options of a listening socket, set before listen(). Unset sizes and keep-alive times are left
// alone, so the kernel's defaults (net.ipv4.tcp_keepalive_*, tcp_rmem) stay in force.
// A buffer above net.core.rmem_max/wmem_max is forced (SO_RCVBUFFORCE, as systemd does)
// where the master may (CAP_NET_ADMIN); otherwise the kernel's cap stays.
[[nodiscard]] std::optional<OptionFailure> apply_listen_options(const ListenConfig& l, int fd);

// On a held (bound, listening) socket whose options a reload changed: free_bind (for the
// record: it only acts at bind) and the listen options. held_socket_refusal() comes first.
[[nodiscard]] std::optional<OptionFailure> apply_held_options(const ListenConfig& l, int fd);

// O_NONBLOCK set or cleared as `l.non_blocking` says (systemd's NonBlocking=). The flag is
// the open file's, shared by every process holding the socket: call it only on a socket
// no worker process holds (one just made or taken back, or a slot's socket between runs).
[[nodiscard]] std::optional<OptionFailure> set_blocking_mode(const ListenConfig& l, int fd);

// Why a held socket cannot go from `before`'s options to `after`'s ("bind_to_device cannot
// change on a bound socket"), or nullopt when apply_listen_options() can do it.
[[nodiscard]] std::optional<std::string> held_socket_refusal(const ListenConfig& before, const ListenConfig& after);

}  // namespace preforkd::os
