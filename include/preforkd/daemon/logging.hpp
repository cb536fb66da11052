#pragma once
// The master's log: one line per event on stderr, as text or as JSON objects.

#include <preforkd/core/config.hpp>

namespace preforkd::daemon {

void setup_logging(LogLevel level, LogFormat format);
// A reload changes the level of the running log.
void set_log_level(LogLevel level);

}  // namespace preforkd::daemon
