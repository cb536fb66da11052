#pragma once
// A control request, in the wire's JSON form (one object per line) and in preforkctl's
// command-line form; the protocol as a whole is described in control_protocol.hpp.

#include <preforkd/core/result.hpp>

#include <nlohmann/json.hpp>

#include <preforkd/core/limits.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::control {


// The longest request line the master reads; a longer one is refused and the connection
// closed. A real request is under 100 bytes; the limit only bounds what a client can make
// the master buffer.
inline constexpr std::size_t max_request_bytes = limits::control_request_bytes;

// The most workers a scale request may ask for: preforkd::max_workers (core/limits.hpp).

// scale N (absolute) or scale +N / -N (relative to the current count).
struct ScaleTarget {
  enum class Kind { absolute, delta };
  Kind kind = Kind::absolute;
  int value = 0;

  // The count to scale to from `current`, or why it is out of range.
  [[nodiscard]] Result<int> resolve(int current) const;
  bool operator==(const ScaleTarget&) const = default;
};

// restart all, or restart these slots (sorted, without duplicates).
struct RestartTarget {
  bool all = true;
  std::vector<int> slots;
  bool operator==(const RestartTarget&) const = default;
};

// logs: the last `lines` lines of each of `slots` (every slot when empty), sorted, without
// duplicates; `follow` keeps the connection open for the lines that come after.
// The reply: {"ok":true,"lines":[{"time":…,"slot":…,"pid":…,"stream":"stdout","text":…}…]};
// while following, one more object per line: {"line":{…}}, or {"dropped":N} when N lines
// were left out because the client did not read fast enough.
inline constexpr int default_log_lines = 10;
inline constexpr int max_log_lines = 10000;
// The text a logs reply carries at most: past it the oldest lines are left out.
inline constexpr std::size_t max_logs_reply_bytes = 4 * 1024 * 1024;
struct LogsTarget {
  int lines = default_log_lines;  // 0 to max_log_lines
  std::vector<int> slots;
  bool follow = false;
  bool operator==(const LogsTarget&) const = default;
};

struct Request {
  enum class Command { status, reload, scale, restart, stop, upgrade, logs };
  Command command = Command::status;
  ScaleTarget scale;      // for Command::scale
  RestartTarget restart;  // for Command::restart
  LogsTarget logs;        // for Command::logs
  bool operator==(const Request&) const = default;
};

[[nodiscard]] const char* to_string(Request::Command command);

// Reads one request line (without its newline). Errors are what the client is told:
// "malformed JSON: ...", "unknown command 'x'", "scale: expected \"count\" or \"delta\"".
[[nodiscard]] Result<Request> parse_request(std::string_view line);

// The request as one JSON line, without the trailing newline.
[[nodiscard]] std::string encode_request(const Request& request);

// The command line form: `scale +2`, `restart 0 3`, `status`. Used by preforkctl.
[[nodiscard]] Result<Request> request_from_args(std::string_view command, const std::vector<std::string>& args);

// logs arguments: [-f] [-n N] [SLOT...] (preforkctl's own words, also --follow, --lines N).
[[nodiscard]] Result<LogsTarget> parse_logs_args(const std::vector<std::string>& args);

// "4", "+2", "-1" → a ScaleTarget; otherwise "scale: expected N, +N or -N, got 'x'".
[[nodiscard]] Result<ScaleTarget> parse_scale_arg(std::string_view text);

}  // namespace preforkd::control
