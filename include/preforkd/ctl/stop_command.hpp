#pragma once
// `preforkctl stop`: asks for a graceful stop and returns once the master has exited
// (SPEC), or when the timeout ends first.

#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <sys/types.h>
#include <variant>

namespace preforkd::ctl {

struct StopOutcome {
  pid_t pid = 0;            // the master's, from its status
  int workers = 0;          // how many it had when asked to stop
  bool exited = false;      // false: still stopping when the timeout ended
  nlohmann::json reply;     // the daemon's reply to the stop request
};

enum class StopError { unreachable, refused };

struct StopFailure {
  StopError kind = StopError::unreachable;
  std::string message;
};

// Reads the master's pid and worker count (a status request), sends stop, then waits for
// the daemon to close the connection and its pid to go, all within `timeout`.
[[nodiscard]] std::variant<StopOutcome, StopFailure> stop_and_wait(const std::string& socket_path, Duration timeout);

// "stopped (pid 1234, 3 workers)" or "timed out after 90s; preforkd (pid 1234) is still stopping".
[[nodiscard]] std::string describe(const StopOutcome& outcome, Duration timeout);

}  // namespace preforkd::ctl
