#include <preforkd/daemon/log/logging.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string_view>

#include <sys/stat.h>
#include <unistd.h>

namespace preforkd::daemon {

namespace {

// The fields of the message being logged on this thread (log_with), or none.
thread_local const LogFields* current_fields = nullptr;
LogTarget current_target = LogTarget::stream;

std::string json_string(std::string_view text) {
  return nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// %j: the message as a JSON string, quotes included, so a worker's output line cannot
// break the log's JSON.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string quoted = json_string(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(quoted.data(), quoted.data() + quoted.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

// %F: the message's fields (log_with), each as `,"name":value`, in the order of LogFields.
class JsonFieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const LogFields* f = current_fields;
    if (f == nullptr) return;
    if (f->slot) fmt::format_to(std::back_inserter(dest), ",\"slot\":{}", *f->slot);
    if (f->worker_pid) fmt::format_to(std::back_inserter(dest), ",\"worker_pid\":{}", *f->worker_pid);
    if (f->generation) fmt::format_to(std::back_inserter(dest), ",\"generation\":{}", *f->generation);
    if (!f->listener.empty()) fmt::format_to(std::back_inserter(dest), ",\"listener\":{}", json_string(f->listener));
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonFieldsFlag>();
  }
};

// %N: "<N>", the line's syslog priority for the journal: the message's own (a worker's
// line that named it) or its level's.
class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const LogFields* f = current_fields;
    const std::string_view prefix =
        priority_prefix(f != nullptr && f->priority ? *f->priority : syslog_priority(msg.level));
    dest.append(prefix.data(), prefix.data() + prefix.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PriorityFlag>();
  }
};

// The level as the config spells it: spdlog's own %l says "warning" and "critical".
std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err:
    case spdlog::level::critical: return "error";
    case spdlog::level::off: return "off";
    case spdlog::level::n_levels: break;
  }
  return "info";
}

// %k: the level name padded to the longest one, so text messages line up; %K: unpadded.
enum class Padding { aligned, none };
template <Padding padding>
class LevelFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    constexpr std::size_t width = 5;  // "debug", "error", "trace"
    const std::string_view name = level_name(msg.level);
    dest.append(name.data(), name.data() + name.size());
    if constexpr (padding == Padding::aligned) {
      for (std::size_t n = name.size(); n < width; ++n) dest.push_back(' ');
    }
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelFlag<padding>>();
  }
};

// Hands each line of a message to `inner` as a message of its own, so the formatter puts
// the time and level in front of every line. A trailing newline ends the last line.
class LineSplittingSink final : public spdlog::sinks::sink {
 public:
  explicit LineSplittingSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}

  void log(const spdlog::details::log_msg& msg) override {
    std::string_view rest(msg.payload.data(), msg.payload.size());
    if (rest.find('\n') == std::string_view::npos) {
      inner_->log(msg);
      return;
    }
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      spdlog::details::log_msg line = msg;
      line.payload = spdlog::string_view_t(rest.data(), nl == std::string_view::npos ? rest.size() : nl);
      inner_->log(line);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    }
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  spdlog::sink_ptr inner_;
};

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return spdlog::level::trace;
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warn: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

// The line patterns: the journal has a priority in front and no time.
std::string pattern(LogFormat format, LogTarget target) {
  const bool journal = target == LogTarget::journal;
  switch (format) {
    case LogFormat::text:
      return journal ? "%N%k %v" : "%Y-%m-%dT%H:%M:%S.%e %^%k%$ %v";
    case LogFormat::json:
      return journal ? R"(%N{"level":"%K","pid":%P%F,"msg":%j})"
                     : R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%K","pid":%P%F,"msg":%j})";
  }
  return "%v";
}

}  // namespace

LogTarget stderr_target() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream == nullptr || ::fstat(STDERR_FILENO, &st) != 0) return LogTarget::stream;
  return is_journal_stream(stream, static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino))
             ? LogTarget::journal
             : LogTarget::stream;
}

void setup_logging(LogLevel level, LogFormat format) {
  setup_logging(level, format, std::make_shared<spdlog::sinks::stderr_color_sink_st>(), stderr_target());
}

void setup_logging(LogLevel level, LogFormat format, spdlog::sink_ptr out, LogTarget target) {
  auto logger = std::make_shared<spdlog::logger>("preforkd", std::make_shared<LineSplittingSink>(std::move(out)));
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<LevelFlag<Padding::aligned>>('k').add_flag<LevelFlag<Padding::none>>('K');
  formatter->add_flag<JsonMessageFlag>('j').add_flag<JsonFieldsFlag>('F').add_flag<PriorityFlag>('N');
  formatter->set_pattern(pattern(format, target));
  current_target = target;
  logger->set_formatter(std::move(formatter));
  logger->set_level(to_spdlog(level));
  // Every line reaches the pipe or journal at once: a supervisor's log is read live.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

void set_log_level(LogLevel level) { spdlog::set_level(to_spdlog(level)); }

LogTarget log_target() {
  return current_target;
}

SyslogPriority syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return SyslogPriority::debug;
    case spdlog::level::info:
      return SyslogPriority::info;
    case spdlog::level::warn:
      return SyslogPriority::warning;
    case spdlog::level::err:
      return SyslogPriority::err;
    case spdlog::level::critical:
      return SyslogPriority::crit;
    case spdlog::level::off:
    case spdlog::level::n_levels:
      break;
  }
  return SyslogPriority::info;
}

spdlog::level::level_enum log_level_of(SyslogPriority priority) {
  switch (priority) {
    case SyslogPriority::emerg:
    case SyslogPriority::alert:
    case SyslogPriority::crit:
      return spdlog::level::critical;
    case SyslogPriority::err:
      return spdlog::level::err;
    case SyslogPriority::warning:
      return spdlog::level::warn;
    case SyslogPriority::notice:
    case SyslogPriority::info:
      return spdlog::level::info;
    case SyslogPriority::debug:
      return spdlog::level::debug;
  }
  return spdlog::level::info;
}

LogFieldsScope::LogFieldsScope(const LogFields& fields) : previous_(current_fields) {
  current_fields = &fields;
}

LogFieldsScope::~LogFieldsScope() {
  current_fields = previous_;
}

LoggedOutputLine output_line(std::string_view line, LogTarget target) {
  if (target != LogTarget::journal) return {spdlog::level::info, std::nullopt, line};
  const PrefixedLine own = split_priority_prefix(line);
  if (!own.priority) return {spdlog::level::info, std::nullopt, line};
  return {log_level_of(*own.priority), own.priority, own.text};
}

void print_error(std::string_view text) {
  const std::string_view prefix =
      stderr_target() == LogTarget::journal ? priority_prefix(SyslogPriority::err) : std::string_view{};
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    std::fprintf(stderr, "%.*s%.*s\n", static_cast<int>(prefix.size()), prefix.data(), static_cast<int>(line.size()),
                 line.data());
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
}

}  // namespace preforkd::daemon
