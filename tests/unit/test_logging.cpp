// The master's log format: every line of a message has the time and the level, and the
// levels are spelled as the config spells them.

#include <preforkd/daemon/logging.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

using namespace preforkd;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Makes the default logger write into `out` while it lives, then puts the previous one
// back: `out` dies with the test, the logger must not outlive it.
class LogInto {
 public:
  LogInto(std::ostringstream& out, LogFormat format) : previous_(spdlog::default_logger()) {
    daemon::setup_logging(LogLevel::trace, format, std::make_shared<spdlog::sinks::ostream_sink_st>(out));
  }
  ~LogInto() { spdlog::set_default_logger(previous_); }
  LogInto(const LogInto&) = delete;
  LogInto& operator=(const LogInto&) = delete;

 private:
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace

TEST_CASE("logging: every line of a multi-line message has the time and the level") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::text);
  spdlog::error("app.toml: 2 errors\napp.toml:3:9: worker.count: bad\napp.toml:4:1: listen: bad");
  spdlog::info("one line");
  const auto lines = lines_of(out.str());
  INFO(out.str());
  REQUIRE(lines.size() == 4);
  const std::regex error_line(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} error app\.toml.*)");
  for (int i = 0; i < 3; ++i) CHECK(std::regex_match(lines[i], error_line));
  CHECK(lines[1].ends_with(" error app.toml:3:9: worker.count: bad"));
  CHECK(lines[3].ends_with(" info  one line"));
}

TEST_CASE("logging: a trailing newline does not add an empty line") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::text);
  spdlog::info("ends with a newline\n");
  CHECK(lines_of(out.str()).size() == 1);
}

TEST_CASE("logging: levels are spelled as in the config (warn not warning)") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::text);
  spdlog::warn("careful");
  INFO(out.str());
  CHECK(out.str().find(" warn  careful\n") != std::string::npos);
  CHECK(out.str().find("warning") == std::string::npos);
}

TEST_CASE("logging: json lines are one object per line - with the config's level names") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::json);
  spdlog::warn("first\nsecond");
  const auto lines = lines_of(out.str());
  INFO(out.str());
  REQUIRE(lines.size() == 2);
  const auto first = nlohmann::json::parse(lines[0]);
  const auto second = nlohmann::json::parse(lines[1]);
  CHECK(first["level"] == "warn");
  CHECK(first["msg"] == "first");
  CHECK(second["level"] == "warn");
  CHECK(second["msg"] == "second");
}
