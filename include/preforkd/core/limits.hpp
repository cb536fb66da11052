#pragma once
// Hard limits shared by the config, the control protocol, the supervisor and spawn: one
// home for each, so they cannot drift apart.

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace preforkd {

// The most workers one master runs: worker.count, `scale` and restart slot numbers.
inline constexpr int max_workers = 1024;

// The most listening sockets a worker is handed (fds 3 .. 3+N-1); spawn sizes its
// fd table from it.
inline constexpr std::size_t max_listen_fds = 1024;

}  // namespace preforkd

// Every bound on what a config file or a control client can make the master hold or do,
// in one place. The README's "Limits" table lists the same values; change both together.

namespace preforkd::limits {

// ---- the config file ----

// A config file is a page of text; anything far bigger is the wrong file.
inline constexpr std::size_t config_bytes = 1024 * 1024;
// Tables, arrays and dotted-key segments nested inside each other: in [a.b] c.d = [[1]]
// the inner array is at level 5 (a, b, c, d: the outer array is d's value, then the inner).
// Checked before toml++ sees the text: its parser and its tables recurse once per level.
inline constexpr int config_depth = 16;
// One string value (a command argument, an env value, a path, ...).
inline constexpr std::size_t string_bytes = 64 * 1024;
// Array lengths.
inline constexpr std::size_t listen_entries = 64;
inline constexpr std::size_t command_args = 4096;
inline constexpr std::size_t env_entries = 4096;  // also: all env_file variables together
// [worker] env_file: how many files, and the size of each (an environment, not a data file).
inline constexpr std::size_t env_files = 64;
inline constexpr std::size_t env_file_bytes = 1024 * 1024;
inline constexpr std::size_t fatal_exit_codes = 256;
// Errors printed for one file; the rest are counted ("... and N more errors").
inline constexpr std::size_t config_errors = 50;
// The did-you-mean suggestion is computed only for words this short (it is quadratic).
inline constexpr std::size_t suggestion_chars = 64;
// A value echoed in an error message is cut after this many bytes.
inline constexpr std::size_t echoed_bytes = 200;

// Durations: 0 to 30 days. A longer timeout is a mistake, and milliseconds, microseconds
// (WATCHDOG_USEC) and libuv's timers all hold it without overflow.
inline constexpr std::chrono::milliseconds max_duration = std::chrono::hours(24 * 30);
// Sizes: 0 to 1 TiB.
inline constexpr std::uint64_t max_size_bytes = std::uint64_t{1} << 40;

// ---- the control socket ----

// One request line; control::max_request_bytes (core/control_request.hpp) names this value.
inline constexpr std::size_t control_request_bytes = 64 * 1024;
// A whole request, from its first byte to its newline, and a reply being written, must
// finish within this (not reset per byte); an idle connection is closed after it too.
inline constexpr std::chrono::milliseconds control_request_deadline = std::chrono::seconds(10);
// Reply bytes written but not yet read by one client; above it the master stops reading
// that client's requests until it reads its replies.
inline constexpr std::size_t control_unsent_bytes = 1024 * 1024;
// Connections served at once; when full, the connection that has waited longest without
// a complete request is closed to make room.
inline constexpr std::size_t control_clients = 256;

// ---- the metrics endpoint ----

// A request head, from its first byte to the end of its blank line: a longer one gets 431,
// however its bytes arrive (one write or a trickle).
inline constexpr std::size_t metrics_head_bytes = 8 * 1024;

// ---- operations ----

// Operations (reload, restart, scale) waiting behind the one in progress
// (core/operation_queue.hpp); one more is refused. A reload that joins a waiting reload
// takes no place.
inline constexpr std::size_t queued_operations = 64;

// ---- file descriptors ----

// Descriptors the master keeps beside listeners and each worker's pipes and notify socket
// (log, control socket and its clients, signal pipes, /proc reads), checked against RLIMIT_NOFILE.
inline constexpr std::size_t fd_margin = 32;

}  // namespace preforkd::limits
