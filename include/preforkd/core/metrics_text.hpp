#pragma once
// The status document in Prometheus' text exposition format (version 0.0.4), for
// GET /metrics. A pure function of the same StatusSnapshot that `preforkctl status`
// shows, so the two cannot disagree, and of the master's own process figures.
//
// Names follow https://prometheus.io/docs/practices/naming/: base units in the name
// (`_seconds`, `_bytes`, `_ratio`), counters typed `counter` and named `_total`, a counter
// with a `reason` label shows every reason from the start (at 0), times are
// `_start_time_seconds` / `_timestamp_seconds` since the epoch (never an uptime, which
// changes with every scrape), and the master's `process_*` metrics are those of the client
// libraries' process collector. Every metric is written out below with a help text for
// people; a numeric status field that is not exported is listed with why
// (left_out_fields), and a unit test checks that every field is one or the other.

#include <preforkd/core/control_protocol.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::metrics {

// The Content-Type of the text format, as Prometheus asks for it.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

// The master process as client libraries' process collectors export it (from
// /proc/self/stat, /proc/self/fd, the open-files limit); a figure that could not be read
// is left out.
struct ProcessMetrics {
  std::optional<double> cpu_seconds;           // user + system
  std::optional<std::uint64_t> resident_memory_bytes;
  std::optional<std::uint64_t> virtual_memory_bytes;
  std::optional<std::uint64_t> open_fds;
  std::optional<std::uint64_t> max_fds;        // the soft RLIMIT_NOFILE
  std::optional<double> start_time_seconds;    // since the epoch
};

// The whole exposition: # HELP and # TYPE lines, then the samples of each metric.
[[nodiscard]] std::string render(const control::StatusSnapshot& snapshot, const ProcessMetrics& process = {});

// Status fields (as "master.x", "workers[].x", "listeners[].x" paths of `status --json`)
// that /metrics exports, and those it leaves out on purpose; a test checks that every
// numeric field is in one list.
[[nodiscard]] const std::vector<std::string_view>& exported_fields();
[[nodiscard]] const std::vector<std::string_view>& left_out_fields();

// A label value between double quotes: backslash, double quote and newline escaped.
[[nodiscard]] std::string escape_label_value(std::string_view text);
// A HELP text: backslash and newline escaped.
[[nodiscard]] std::string escape_help(std::string_view text);
// A sample value as Prometheus parses it: integers without a fraction, NaN, +Inf, -Inf.
[[nodiscard]] std::string format_value(double value);

}  // namespace preforkd::metrics
