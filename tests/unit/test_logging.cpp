// The master's log format: every line of a message has the time and the level, and the
// levels are spelled as the config spells them; under the journal a priority instead of the
// time; in JSON the fields of what a message is about.

#include <preforkd/daemon/log/logging.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/null_sink.h>
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
  LogInto(std::ostringstream& out, LogFormat format, daemon::LogTarget target = daemon::LogTarget::stream)
      : previous_(spdlog::default_logger()), previous_target_(daemon::log_target()) {
    daemon::setup_logging(LogLevel::trace, format, std::make_shared<spdlog::sinks::ostream_sink_st>(out), target);
  }
  ~LogInto() {
    // The target goes back too: setup_logging() is what sets it.
    if (previous_target_ != daemon::log_target())
      daemon::setup_logging(LogLevel::trace, LogFormat::text, std::make_shared<spdlog::sinks::null_sink_st>(),
                            previous_target_);
    spdlog::set_default_logger(previous_);
  }
  LogInto(const LogInto&) = delete;
  LogInto& operator=(const LogInto&) = delete;

 private:
  std::shared_ptr<spdlog::logger> previous_;
  daemon::LogTarget previous_target_;
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

TEST_CASE("logging: under the journal every line begins with its priority and has no time") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::text, daemon::LogTarget::journal);
  spdlog::error("app.toml: 2 errors\napp.toml:3:9: worker.count: bad");
  spdlog::warn("careful");
  spdlog::info("one line");
  spdlog::debug("detail");
  spdlog::trace("more detail");
  spdlog::critical("worst");
  INFO(out.str());
  const std::vector<std::string> expected{
      "<3>error app.toml: 2 errors", "<3>error app.toml:3:9: worker.count: bad",
      "<4>warn  careful",            "<6>info  one line",
      "<7>debug detail",             "<7>trace more detail",
      "<2>error worst",
  };
  CHECK(lines_of(out.str()) == expected);
}

TEST_CASE("logging: a stream gets the time and no priority prefix") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::text, daemon::LogTarget::stream);
  spdlog::error("bad");
  INFO(out.str());
  CHECK(
      std::regex_match(lines_of(out.str()).at(0), std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} error bad$)")));
}

TEST_CASE("logging: json under the journal has the priority in front and no time") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::json, daemon::LogTarget::journal);
  spdlog::error("first\nsecond");
  const auto lines = lines_of(out.str());
  INFO(out.str());
  REQUIRE(lines.size() == 2);
  for (const auto& line : lines) {
    REQUIRE(line.starts_with("<3>{"));
    const auto object = nlohmann::json::parse(line.substr(3));
    CHECK(object["level"] == "error");
    CHECK_FALSE(object.contains("time"));
  }
}

TEST_CASE("logging: levels map to syslog priorities") {
  CHECK(daemon::syslog_priority(spdlog::level::trace) == SyslogPriority::debug);
  CHECK(daemon::syslog_priority(spdlog::level::debug) == SyslogPriority::debug);
  CHECK(daemon::syslog_priority(spdlog::level::info) == SyslogPriority::info);
  CHECK(daemon::syslog_priority(spdlog::level::warn) == SyslogPriority::warning);
  CHECK(daemon::syslog_priority(spdlog::level::err) == SyslogPriority::err);
  CHECK(daemon::syslog_priority(spdlog::level::critical) == SyslogPriority::crit);
  // And back, for a worker's line that names its own.
  CHECK(daemon::log_level_of(SyslogPriority::emerg) == spdlog::level::critical);
  CHECK(daemon::log_level_of(SyslogPriority::crit) == spdlog::level::critical);
  CHECK(daemon::log_level_of(SyslogPriority::err) == spdlog::level::err);
  CHECK(daemon::log_level_of(SyslogPriority::warning) == spdlog::level::warn);
  CHECK(daemon::log_level_of(SyslogPriority::notice) == spdlog::level::info);
  CHECK(daemon::log_level_of(SyslogPriority::info) == spdlog::level::info);
  CHECK(daemon::log_level_of(SyslogPriority::debug) == spdlog::level::debug);
}

TEST_CASE("logging: json carries slot - worker_pid - generation and listener as fields") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::json);
  daemon::log_with({.slot = 1, .worker_pid = 4242, .generation = 3}, spdlog::level::warn,
                   "worker {} (pid {}) exited with status 1\nsecond line", 1, 4242);
  daemon::log_with({.listener = "http \"main\""}, spdlog::level::info, "listener: ok");
  daemon::log_with({.slot = 0}, spdlog::level::info, "slot only");
  spdlog::info("none");
  const auto lines = lines_of(out.str());
  INFO(out.str());
  REQUIRE(lines.size() == 5);
  for (int i = 0; i < 2; ++i) {
    const auto worker = nlohmann::json::parse(lines[static_cast<std::size_t>(i)]);
    CHECK(worker["slot"] == 1);
    CHECK(worker["worker_pid"] == 4242);
    CHECK(worker["generation"] == 3);
    CHECK_FALSE(worker.contains("listener"));
    CHECK(worker["level"] == "warn");
  }
  CHECK(nlohmann::json::parse(lines[0])["msg"] == "worker 1 (pid 4242) exited with status 1");
  const auto listener = nlohmann::json::parse(lines[2]);
  CHECK(listener["listener"] == "http \"main\"");
  CHECK_FALSE(listener.contains("slot"));
  const auto slot_only = nlohmann::json::parse(lines[3]);
  CHECK(slot_only["slot"] == 0);
  CHECK_FALSE(slot_only.contains("worker_pid"));
  const auto none = nlohmann::json::parse(lines[4]);
  for (const char* key : {"slot", "worker_pid", "generation", "listener"}) CHECK_FALSE(none.contains(key));
  CHECK(none["msg"] == "none");
}

TEST_CASE("logging: the text format keeps its words when a message has fields") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::text);
  daemon::log_with({.slot = 1, .worker_pid = 4242, .listener = "http"}, spdlog::level::info, "worker {} ready", 1);
  INFO(out.str());
  CHECK(out.str().ends_with(" info  worker 1 ready\n"));
}

TEST_CASE("logging: a message's fields end with it") {
  std::ostringstream out;
  const LogInto capture(out, LogFormat::json);
  const daemon::LogFields outer{.generation = 2};
  {
    const daemon::LogFieldsScope scope(outer);
    daemon::log_with({.slot = 5}, spdlog::level::info, "inner");
    spdlog::info("outer");
  }
  spdlog::info("after");
  const auto lines = lines_of(out.str());
  INFO(out.str());
  REQUIRE(lines.size() == 3);
  CHECK(nlohmann::json::parse(lines[0])["slot"] == 5);
  CHECK_FALSE(nlohmann::json::parse(lines[0]).contains("generation"));
  CHECK(nlohmann::json::parse(lines[1])["generation"] == 2);
  CHECK_FALSE(nlohmann::json::parse(lines[2]).contains("generation"));
}

TEST_CASE("logging: a worker's output line takes its own priority only under the journal") {
  using daemon::LogTarget;
  const auto plain = daemon::output_line("<3>disk full", LogTarget::stream);
  CHECK(plain.level == spdlog::level::info);
  CHECK_FALSE(plain.priority);
  CHECK(plain.text == "<3>disk full");
  const auto own = daemon::output_line("<3>disk full", LogTarget::journal);
  CHECK(own.level == spdlog::level::err);
  CHECK(own.priority == SyslogPriority::err);
  CHECK(own.text == "disk full");
  const auto unmarked = daemon::output_line("GET / 200", LogTarget::journal);
  CHECK(unmarked.level == spdlog::level::info);
  CHECK_FALSE(unmarked.priority);
  CHECK(unmarked.text == "GET / 200");

  std::ostringstream out;
  const LogInto capture(out, LogFormat::text, LogTarget::journal);
  const auto notice = daemon::output_line("<5>rotated", LogTarget::journal);
  daemon::log_with({.slot = 0, .priority = notice.priority}, notice.level, "worker 0 (pid 7): {}", notice.text);
  CHECK(out.str() == "<5>info  worker 0 (pid 7): rotated\n");
}
