#pragma once
// The master's log: one line per event on stderr, as text or as JSON objects.
//
// Every line carries the time and the level, also the second and later lines of a
// multi-line message (a config error with several problems, an exec error): a log reader
// that filters on the prefix never sees a bare line. The level names are the config's
// own (`warn`, not spdlog's `warning`).
//
// Under the journal (JOURNAL_STREAM names stderr) every line begins with its syslog
// priority instead ("<3>error …"): journald files it at that priority and stamps the time
// itself, so preforkd writes none.
//
// A message about a worker, a listener or a reload says so in fields of its own in the
// JSON format (`slot`, `worker_pid`, `generation`, `listener`): log_with() passes them.
// The text format has the same facts in its words.

#include <preforkd/core/config.hpp>
#include <preforkd/core/journal_stream.hpp>

#include <spdlog/common.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string_view>
#include <utility>

#include <sys/types.h>

namespace preforkd::daemon {

// Where the log's lines go: a stream read as it is (a terminal, a file, a pipe), or the
// journal, which takes a "<N>" priority in front and has a time of its own.
enum class LogTarget { stream, journal };

// The journal when JOURNAL_STREAM names the file stderr is (its device and inode).
[[nodiscard]] LogTarget stderr_target();

void setup_logging(LogLevel level, LogFormat format);
// The same, writing to `out` as `target` instead of stderr (tests).
void setup_logging(LogLevel level, LogFormat format, spdlog::sink_ptr out, LogTarget target = LogTarget::stream);
// A reload changes the level of the running log.
void set_log_level(LogLevel level);
// The target setup_logging() chose.
[[nodiscard]] LogTarget log_target();

// The priority a level is logged with under the journal, and the level of a priority.
[[nodiscard]] SyslogPriority syslog_priority(spdlog::level::level_enum level);
[[nodiscard]] spdlog::level::level_enum log_level_of(SyslogPriority priority);

// What a message is about, each a JSON field of its own when set.
struct LogFields {
  std::optional<int> slot{};          // "slot"
  std::optional<pid_t> worker_pid{};  // "worker_pid"
  std::optional<int> generation{};    // "generation": the worker's, or the one a reload goes to
  std::string_view listener{};        // "listener" (empty: none)
  // Under the journal: this priority instead of the level's (a worker's own "<N>").
  std::optional<SyslogPriority> priority{};
};

// While it lives, the messages logged on this thread carry `fields`. log_with() is the
// way to use it; the fields must outlive the scope.
class LogFieldsScope {
 public:
  explicit LogFieldsScope(const LogFields& fields);
  ~LogFieldsScope();
  LogFieldsScope(const LogFieldsScope&) = delete;
  LogFieldsScope& operator=(const LogFieldsScope&) = delete;

 private:
  const LogFields* previous_;
};

// spdlog::log(level, fmt, args...) with `fields` in the JSON line.
template <typename... Args>
void log_with(const LogFields& fields, spdlog::level::level_enum level, spdlog::format_string_t<Args...> fmt,
              Args&&... args) {
  const LogFieldsScope scope(fields);
  spdlog::log(level, fmt, std::forward<Args>(args)...);
}

// A line of a worker's stdout or stderr (worker_output = "log"), as the master logs it:
// at info, as written. Under the journal a line that begins with its own priority ("<3>…",
// what a program written for the journal prints) is logged at that priority without the
// prefix, as systemd would file it had the worker's output gone to the journal directly.
struct LoggedOutputLine {
  spdlog::level::level_enum level = spdlog::level::info;
  std::optional<SyslogPriority> priority{};
  std::string_view text{};
};
[[nodiscard]] LoggedOutputLine output_line(std::string_view line, LogTarget target);

// Before the log is set up (a config that cannot be read): `text` on stderr, each of its
// lines with the error priority in front under the journal.
void print_error(std::string_view text);

}  // namespace preforkd::daemon
