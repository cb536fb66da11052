#pragma once
// The exit codes of preforkd and preforkctl (SPEC, "Exit codes of both programs"), from
// BSD's sysexits.h where one fits, so scripts and systemd units can tell them apart.

namespace preforkd::exit_code {

inline constexpr int ok = 0;
// The operation failed: the daemon refused a command, a socket could not be bound.
inline constexpr int failed = 1;
// A bad command line.
inline constexpr int usage = 2;
// preforkctl: the daemon cannot be reached (EX_UNAVAILABLE).
inline constexpr int unreachable = 69;
// The configuration is invalid (EX_CONFIG).
inline constexpr int config = 78;

}  // namespace preforkd::exit_code
