#pragma once
// The status document in Prometheus' text exposition format (version 0.0.4), for
// GET /metrics. A pure function of the same StatusSnapshot that `preforkctl status`
// shows, so the two cannot disagree.
//
// Every numeric field of the master, of each worker and of each listener becomes a metric
// named after its JSON key, so a field added to the status model is exported without
// changing this file: `preforkd_master_<key>`, `preforkd_worker_<key>{slot="N"}`,
// `preforkd_listener_<key>{listener="name"}`; a nested object's fields join its key
// (`last_exit.code` -> `preforkd_worker_last_exit_code`). Units follow the Prometheus
// conventions: a key ending in `_s` becomes `_seconds`, `_ms` becomes `_seconds` (the value
// divided by 1000), `_percent` becomes `_ratio` (divided by 100); booleans are 0 or 1.
// Fields that count events (restarts, crashes, reloads, ...: counter_keys) are counters
// named `..._total`. A few fields have names chosen by hand (the table in the .cpp).
// Strings are not numbers: the worker's state and activity become one 0/1 series per
// value, the version becomes preforkd_build_info, listeners get preforkd_listener_info.

#include <preforkd/core/control_protocol.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace preforkd::metrics {

// The Content-Type of the text format, as Prometheus asks for it.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

// The whole exposition: # HELP and # TYPE lines, then the samples of each metric.
[[nodiscard]] std::string render(const control::StatusSnapshot& snapshot);
// The same from the status document as `status --json` has it ({"master", "workers",
// "listeners"}): fields this build's StatusSnapshot does not know are exported too.
[[nodiscard]] std::string render(const nlohmann::json& status);

// A label value between double quotes: backslash, double quote and newline escaped.
[[nodiscard]] std::string escape_label_value(std::string_view text);
// A HELP text: backslash and newline escaped.
[[nodiscard]] std::string escape_help(std::string_view text);
// A sample value as Prometheus parses it: integers without a fraction, NaN, +Inf, -Inf.
[[nodiscard]] std::string format_value(double value);
// A JSON key made into part of a metric name: [a-zA-Z0-9_] kept, anything else '_'.
[[nodiscard]] std::string name_part(std::string_view key);

}  // namespace preforkd::metrics
