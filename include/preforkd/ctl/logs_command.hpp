#pragma once
// `preforkctl logs [-f] [-n N] [SLOT...]`: the workers' recent output that the master keeps
// (worker.log_buffer), printed as the master logged it; with -f, then each new line until
// interrupted or until the master goes.

#include <preforkd/core/control_protocol.hpp>
#include <preforkd/core/output_ring.hpp>
#include <preforkd/core/units.hpp>

#include <string>

namespace preforkd::ctl {

// "2026-12-06 21:59:46.120 worker 1 (pid 4242): text", in local time: the master's prefix.
[[nodiscard]] std::string format_log_line(const OutputLine& line);

// Sends `request` (a logs request) to the socket at `path` and prints what comes back on
// stdout (JSON lines with `json`); returns the exit code.
[[nodiscard]] int run_logs(const std::string& path, const control::Request& request, Duration timeout, bool json);

}  // namespace preforkd::ctl
