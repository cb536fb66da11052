#pragma once
// File descriptors at start-up: raise RLIMIT_NOFILE's soft limit to the hard limit (as
// systemd and nginx do), and refuse a config that cannot fit in it, rather than run
// degraded with every spawn failing on EMFILE.

#include <preforkd/core/config.hpp>
#include <preforkd/core/result.hpp>

#include <cstdint>

namespace preforkd::os {

// The descriptors the master holds for `config` with `workers` workers: every listening
// socket (one per worker slot and listener in reuseport mode, including the max_surge slots
// of a rolling update), each worker's output pipes, exec report and notify socket (one per run,
// with ready = "notify" or a watchdog), and limits::fd_margin for the rest (stdio, log,
// control socket and clients, signal pipe, /proc reads).
[[nodiscard]] std::uint64_t fds_needed(const Config& config, int workers);

struct FdLimit {
  std::uint64_t soft = 0;  // in force (after raising)
  std::uint64_t hard = 0;
};

// Raises the soft limit to the hard limit; the limits then in force. Also lowers nothing.
[[nodiscard]] Result<FdLimit> raise_fd_limit();

// The limits in force now, without changing them.
[[nodiscard]] Result<FdLimit> current_fd_limit();

// The error for `workers` workers when they do not fit in `limit`, naming the numbers.
[[nodiscard]] Status check_fd_limit(const Config& config, int workers, const FdLimit& limit);

}  // namespace preforkd::os
