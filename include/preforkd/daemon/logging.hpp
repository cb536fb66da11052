#pragma once
// The master's log: one line per event on stderr, as text or as JSON objects.
//
// Every line carries the time and the level, also the second and later lines of a
// multi-line message (a config error with several problems, an exec error): a log reader
// that filters on the prefix never sees a bare line. The level names are the config's
// own (`warn`, not spdlog's `warning`).

#include <preforkd/core/config.hpp>

#include <spdlog/common.h>

#include <memory>

namespace preforkd::daemon {

void setup_logging(LogLevel level, LogFormat format);
// The same, writing to `out` instead of stderr (tests).
void setup_logging(LogLevel level, LogFormat format, spdlog::sink_ptr out);
// A reload changes the level of the running log.
void set_log_level(LogLevel level);

}  // namespace preforkd::daemon
