#include <preforkd/daemon/logging.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string_view>

namespace preforkd::daemon {

namespace {

// %j: the message as a JSON string, quotes included, so a worker's output line cannot
// break the log's JSON.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string quoted = nlohmann::json(std::string(msg.payload.data(), msg.payload.size())).dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(quoted.data(), quoted.data() + quoted.size());
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
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

}  // namespace

void setup_logging(LogLevel level, LogFormat format) {
  setup_logging(level, format, std::make_shared<spdlog::sinks::stderr_color_sink_st>());
}

void setup_logging(LogLevel level, LogFormat format, spdlog::sink_ptr out) {
  auto logger = std::make_shared<spdlog::logger>("preforkd", std::make_shared<LineSplittingSink>(std::move(out)));
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<LevelFlag<Padding::aligned>>('k').add_flag<LevelFlag<Padding::none>>('K');
  switch (format) {
    case LogFormat::text:
      formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%k%$ %v");
      break;
    case LogFormat::json:
      formatter->add_flag<JsonMessageFlag>('j').set_pattern(
          R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%K","pid":%P,"msg":%j})");
      break;
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(to_spdlog(level));
  // Every line reaches the pipe or journal at once: a supervisor's log is read live.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

void set_log_level(LogLevel level) { spdlog::set_level(to_spdlog(level)); }

}  // namespace preforkd::daemon
