#include <preforkd/daemon/logging.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

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
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
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
  auto logger = spdlog::stderr_color_st("preforkd");
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  switch (format) {
    case LogFormat::text:
      formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
      break;
    case LogFormat::json:
      formatter->add_flag<JsonMessageFlag>('j').set_pattern(
          R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","pid":%P,"msg":%j})");
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
