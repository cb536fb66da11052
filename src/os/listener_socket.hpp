#pragma once
// Private to ListenerSet's files: making one listening socket from a listener's config
// (resolving its address, refusing one that someone else holds, setting its options,
// binding and listening), shared by binding, growing, reopening and the fd store.

#include <preforkd/core/config.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/os/fd.hpp>
#include <preforkd/os/socket_options.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/stat.h>

namespace preforkd::os::listener_socket {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  [[nodiscard]] int family() const { return storage.ss_family; }
};

// The rule of "one socket per slot": reuseport, and not unix (which has no SO_REUSEPORT).
[[nodiscard]] bool has_per_slot_sockets(const ListenConfig& l);

// "127.0.0.1:80", "[::1]:80", "unix:/run/app.sock": the address as errors show it.
[[nodiscard]] std::string display(const Address& a);

// The config's address as a sockaddr (numeric only: no DNS at start-up).
[[nodiscard]] Result<SockAddr> resolve(const ListenConfig& l);
// The address `fd` is bound to: a group's own, whose port the kernel may have chosen.
[[nodiscard]] Result<SockAddr> bound_address(const ListenConfig& l, int fd);

// Refuses an address that another socket already listens on; `own` are the inodes of
// this master's sockets, which do not count.
[[nodiscard]] Status check_port_free(const ListenConfig& l, const SockAddr& sa, const std::vector<std::uint64_t>& own);

[[nodiscard]] Error option_failure(const ListenConfig& l, const OptionFailure& f);

enum class Sharing { per_slot, shared };
[[nodiscard]] Result<Fd> open_ip_socket(const ListenConfig& l, const SockAddr& sa, Sharing sharing);
// Appends `count` members to a SO_REUSEPORT group.
[[nodiscard]] Status open_group_members(const ListenConfig& l, SockAddr sa, int count, std::vector<Fd>& out);
// Closes the highest slots first, down to `keep`.
void close_from_back(std::vector<Fd>& fds, std::size_t keep);
// Binds a unix socket; `owned_path` and `owned` say which file it created, also on failure.
[[nodiscard]] Result<Fd> open_unix_socket(const ListenConfig& l, const SockAddr& sa, std::string* owned_path,
                                          struct stat* owned);

}  // namespace preforkd::os::listener_socket
