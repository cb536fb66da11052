// The TOML config: every key and default, and the exact message for each kind of mistake.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <preforkd/core/config.hpp>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace preforkd;

namespace {

// The smallest valid [worker]; a case appended to it starts on line 3.
std::string worker(const std::string& rest = "") {
  return "[worker]\ncommand = [\"/bin/app\"]\n" + rest;
}

std::vector<std::string> messages(const ConfigResult& r) {
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.to_string());
  return out;
}

Config must_parse(const std::string& text, int cpus = 2) {
  const ConfigResult r = parse_config(text, "app.toml", cpus);
  INFO(text);
  for (const std::string& m : messages(r)) UNSCOPED_INFO(m);
  REQUIRE(r.errors.empty());
  REQUIRE(r.config.has_value());
  return *r.config;
}

struct BadConfig {
  std::string toml;
  std::string message;
};

// Each config has exactly one mistake, and the message names the place, the key, what was
// expected and what was found.
const std::vector<BadConfig> bad_configs{
    // [worker].count
    {"[worker]\ncount = 0\ncommand = [\"/bin/app\"]\n",
     R"(app.toml:2:9: worker.count: must be "auto" or an integer from 1 to 1024, got 0)"},
    {worker("count = 1025\n"), R"(app.toml:3:9: worker.count: must be "auto" or an integer from 1 to 1024, got 1025)"},
    {worker("count = \"four\"\n"),
     R"(app.toml:3:9: worker.count: must be "auto" or an integer from 1 to 1024, got "four")"},
    {worker("count = true\n"),
     R"(app.toml:3:9: worker.count: must be "auto" or an integer from 1 to 1024, got a boolean)"},
    {worker("count = 2.5\n"),
     R"(app.toml:3:9: worker.count: must be "auto" or an integer from 1 to 1024, got a float)"},
    // unknown keys and tables
    {worker("cont = 3\n"), R"(app.toml:3:1: worker.cont: unknown key; did you mean "count"?)"},
    {worker("stop_sig = \"TERM\"\n"), R"(app.toml:3:1: worker.stop_sig: unknown key; did you mean "stop_signal"?)"},
    {worker("[worker.envv]\nA = \"1\"\n"), R"(app.toml:3:1: worker.envv: unknown table; did you mean "env"?)"},
    {worker("[workers]\ncount = 2\n"), R"(app.toml:3:1: workers: unknown table; did you mean "worker"?)"},
    {"foo = 1\n" + worker(), R"(app.toml:1:1: foo: unknown key; expected "listen", "preforkd" or "worker")"},
    {worker("[[listen]]\naddress = \"127.0.0.1:80\"\nadress = \"127.0.0.1:81\"\n"),
     R"(app.toml:5:1: listen[0].adress: unknown key; did you mean "address"?)"},
    {"[preforkd]\nlog-level = \"info\"\n" + worker(),
     R"(app.toml:2:1: preforkd.log-level: unknown key; did you mean "log_level"?)"},
    // required things
    {"[preforkd]\nlog_level = \"info\"\n",
     R"(app.toml:1:1: worker: required table [worker] is missing; it needs at least command = ["/path/to/server"])"},
    {"worker = 3\n", "app.toml:1:10: worker: expected a table ([worker]), got an integer"},
    {"preforkd = \"x\"\n" + worker(), "app.toml:1:12: preforkd: expected a table ([preforkd]), got a string"},
    {"[worker]\ncount = 2\n",
     R"(app.toml:1:1: worker.command: required key is missing; e.g. command = ["/usr/bin/app", "--flag"])"},
    // [worker].command
    {"[worker]\ncommand = \"/bin/app -D\"\n",
     R"(app.toml:2:11: worker.command: expected an array of strings such as ["/usr/bin/app", "--flag"], got a string)"},
    {"[worker]\ncommand = []\n",
     R"(app.toml:2:11: worker.command: must name the program and its arguments such as ["/usr/bin/app", "--flag"], got [])"},
    {"[worker]\ncommand = [\"/bin/app\", 3]\n", "app.toml:2:24: worker.command[1]: expected a string, got an integer"},
    {"[worker]\ncommand = [\"\", \"-D\"]\n", "app.toml:2:12: worker.command[0]: the program must not be empty"},
    // durations
    {worker("stop_timeout = 30\n"),
     R"(app.toml:3:16: worker.stop_timeout: expected a duration with a unit such as "30s", got 30)"},
    {worker("stop_timeout = \"30\"\n"),
     R"(app.toml:3:16: worker.stop_timeout: missing unit in "30"; add ms, s, m or h, e.g. "30s")"},
    {worker("stop_timeout = \"0s\"\n"), R"(app.toml:3:16: worker.stop_timeout: must be greater than 0s, got "0s")"},
    {worker("ready_timeout = true\n"),
     R"(app.toml:3:17: worker.ready_timeout: expected a duration such as "30s", got a boolean)"},
    {worker("backoff_max = \"30 s\"\n"),
     R"(app.toml:3:15: worker.backoff_max: expected a duration such as "30s", got "30 s")"},
    {worker("backoff_initial = \"1m\"\n"),
     R"(app.toml:3:19: worker.backoff_initial: must not be longer than backoff_max (30s), got "1m")"},
    {worker("watchdog = \"-1s\"\n"), R"(app.toml:3:12: worker.watchdog: a duration cannot be negative, got "-1s")"},
    {worker("watchdog = \"10sec\"\n"),
     R"(app.toml:3:12: worker.watchdog: unknown unit "sec" in "10sec"; use ms, s, m or h)"},
    // [worker].ready
    {worker("ready = \"notfy\"\n"),
     R"(app.toml:3:9: worker.ready: must be "immediate", "notify", "accepting" or a duration such as "1s", got "notfy"; did you mean "notify"?)"},
    {worker("ready = \"2m\"\n"), R"(app.toml:3:9: worker.ready: must be shorter than ready_timeout (30s), got "2m")"},
    {worker("ready_timeout = \"5s\"\nready = \"5s\"\n"),
     R"(app.toml:4:9: worker.ready: must be shorter than ready_timeout (5s), got "5s")"},
    {worker("ready = \"0s\"\n"),
     R"(app.toml:3:9: worker.ready: must be greater than 0s (use "immediate" for no wait), got "0s")"},
    {worker("ready = 1\n"),
     R"(app.toml:3:9: worker.ready: must be "immediate", "notify", "accepting" or a duration with a unit such as "1s", got 1)"},
    {worker("ready = \"1x\"\n"), R"(app.toml:3:9: worker.ready: unknown unit "x" in "1x"; use ms, s, m or h)"},
    {worker("ready = \"acepting\"\n"),
     R"(app.toml:3:9: worker.ready: must be "immediate", "notify", "accepting" or a duration such as "1s", got "acepting"; did you mean "accepting"?)"},
    // [worker].stop_signal
    {worker("stop_signal = \"SIGTREM\"\n"),
     R"(app.toml:3:15: worker.stop_signal: must be a signal name such as "SIGTERM" or "TERM", or a number from 1 to 64, got "SIGTREM"; did you mean "SIGTERM"?)"},
    {worker("stop_signal = \"term\"\n"),
     R"(app.toml:3:15: worker.stop_signal: must be a signal name such as "SIGTERM" or "TERM", or a number from 1 to 64, got "term"; did you mean "TERM"?)"},
    {worker("stop_signal = 0\n"),
     R"(app.toml:3:15: worker.stop_signal: must be a signal name such as "SIGTERM" or "TERM", or a number from 1 to 64, got 0)"},
    {worker("stop_signal = [15]\n"),
     R"(app.toml:3:15: worker.stop_signal: must be a signal name such as "SIGTERM" or "TERM", or a number from 1 to 64, got an array)"},
    // other [worker] keys
    {worker("restart = \"on_failure\"\n"),
     R"(app.toml:3:11: worker.restart: must be one of "always", "on-failure" or "never", got "on_failure"; did you mean "on-failure"?)"},
    {worker("fatal_exit_codes = [1, 256]\n"),
     "app.toml:3:24: worker.fatal_exit_codes[1]: must be an integer from 0 to 255, got 256"},
    {worker("fatal_exit_codes = 3\n"),
     "app.toml:3:20: worker.fatal_exit_codes: expected an array of exit codes such as [3, 4], got an integer"},
    {worker("env = { PORT = 8080 }\n"), "app.toml:3:16: worker.env.PORT: expected a string, got an integer"},
    {worker("env = \"APP_ENV=production\"\n"),
     R"(app.toml:3:7: worker.env: expected a table such as { APP_ENV = "production" }, got a string)"},
    {worker("env = { LISTEN_FDS = \"3\" }\n"),
     "app.toml:3:9: worker.env.LISTEN_FDS: is set by preforkd for every worker and cannot be set here"},
    {worker("env = { PREFORK_WORKER_ID = \"0\" }\n"),
     "app.toml:3:9: worker.env.PREFORK_WORKER_ID: is set by preforkd for every worker and cannot be set here"},
    {worker("env = { \"A=B\" = \"1\" }\n"),
     R"(app.toml:3:9: worker.env."A=B": a variable name must not be empty or contain "=" or NUL)"},
    {worker("user = 33\n"), "app.toml:3:8: worker.user: expected a string, got an integer"},
    {worker("directory = \"/srv\\u0000app\"\n"),
     R"(app.toml:3:13: worker.directory: must not contain a NUL character (\u0000))"},
    {worker("max_memory = \"512KiB\"\n"),
     R"(app.toml:3:14: worker.max_memory: must be "" (off) or a size from 1 MiB to 1024 GiB such as "512MiB", got "512KiB")"},
    {worker("max_memory = \"2048GiB\"\n"),
     R"(app.toml:3:14: worker.max_memory: "2048GiB" is too large; a size can be at most 1024GiB (1 TiB))"},
    {worker("max_memory = 512\n"),
     R"(app.toml:3:14: worker.max_memory: must be "" (off) or a size from 1 MiB to 1024 GiB such as "512MiB", got 512)"},
    {worker("max_lifetime = \"500ms\"\n"),
     R"(app.toml:3:16: worker.max_lifetime: must be "" (off) or a duration from 1s to 8760h such as "6h", got "500ms")"},
    {worker("max_lifetime = 6\n"),
     R"(app.toml:3:16: worker.max_lifetime: expected a duration with a unit such as "30s", got 6)"},
    {worker("memory_sample_interval = \"100ms\"\n"),
     R"(app.toml:3:26: worker.memory_sample_interval: must be a duration from 250ms to 1h, got "100ms")"},
    {worker("max_surge = 0\n"), "app.toml:3:13: worker.max_surge: must be an integer from 1 to 1024, got 0"},
    {worker("log_buffer = \"512B\"\n"),
     R"(app.toml:3:14: worker.log_buffer: must be "0" (off) or a size from 1 KiB to 16 MiB such as "64KiB", got "512B")"},
    {worker("log_buffer = \"32MiB\"\n"),
     R"(app.toml:3:14: worker.log_buffer: must be "0" (off) or a size from 1 KiB to 16 MiB such as "64KiB", got "32MiB")"},
    {worker("log_buffer = 65536\n"),
     R"(app.toml:3:14: worker.log_buffer: must be "0" (off) or a size from 1 KiB to 16 MiB such as "64KiB", got 65536)"},
    {worker("max_surge = \"2\"\n"), "app.toml:3:13: worker.max_surge: must be an integer from 1 to 1024, got a string"},
    // [preforkd]
    {"[preforkd]\nlog_level = \"warning\"\n" + worker(),
     R"(app.toml:2:13: preforkd.log_level: must be one of "trace", "debug", "info", "warn" or "error", got "warning"; did you mean "warn"?)"},
    {"[preforkd]\nlog_format = \"xml\"\n" + worker(),
     R"(app.toml:2:14: preforkd.log_format: must be "text" or "json", got "xml")"},
    {"[preforkd]\nworker_output = 1\n" + worker(),
     R"(app.toml:2:17: preforkd.worker_output: must be "log" or "inherit", got an integer)"},
    {"[preforkd]\ncontrol_mode = \"0999\"\n" + worker(),
     R"(app.toml:2:16: preforkd.control_mode: must be an octal file mode from "0000" to "0777" such as "0660", got "0999")"},
    {"[preforkd]\ncontrol_mode = \"1777\"\n" + worker(),
     R"(app.toml:2:16: preforkd.control_mode: must be an octal file mode from "0000" to "0777" such as "0660", got "1777")"},
    {"[preforkd]\ncontrol_mode = 0o660\n" + worker(),
     R"(app.toml:2:16: preforkd.control_mode: expected a string of octal digits such as "0660", got an integer)"},
    {"[preforkd]\ncontrol_socket = \"app.sock\"\n" + worker(),
     R"(app.toml:2:18: preforkd.control_socket: must be an absolute path, got "app.sock")"},
    {"[preforkd]\ncontrol_socket = \"/" + std::string(107, 's') + "\"\n" + worker(),
     "app.toml:2:18: preforkd.control_socket: is 108 bytes long; a unix socket path can have at most 107"},
    // [[listen]]
    {worker("[[listen]]\nname = \"http\"\n"),
     R"(app.toml:3:1: listen[0].address: required key is missing; e.g. address = "127.0.0.1:8080")"},
    {worker("[[listen]]\naddress = \"example.com:80\"\n"),
     R"(app.toml:4:11: listen[0].address: invalid address "example.com:80": host must be a numeric IPv4 or [IPv6] address, got example.com)"},
    {worker("[[listen]]\naddress = \"127.0.0.1:70000\"\n"),
     R"(app.toml:4:11: listen[0].address: invalid address "127.0.0.1:70000": port must be 1..65535, got 70000)"},
    {worker("[[listen]]\naddress = 8080\n"),
     R"(app.toml:4:11: listen[0].address: expected a string such as "127.0.0.1:8080", got an integer)"},
    {worker("[[listen]]\nname = \"http\"\naddress = \"127.0.0.1:80\"\n[[listen]]\nname = \"http\"\naddress = "
            "\"127.0.0.1:81\"\n"),
     R"(app.toml:7:8: listen[1].name: duplicate name "http"; listen[0] has it too)"},
    {worker("[[listen]]\naddress = \"127.0.0.1:80\"\n[[listen]]\nname = \"listen0\"\naddress = \"127.0.0.1:81\"\n"),
     R"(app.toml:6:8: listen[1].name: duplicate name "listen0"; listen[0] has it too)"},
    {worker("[[listen]]\naddress = \"*:80\"\n[[listen]]\naddress = \"0.0.0.0:80\"\n"),
     R"(app.toml:6:11: listen[1].address: "0.0.0.0:80" is already used by listen[0])"},
    {worker("[[listen]]\nname = \"a:b\"\naddress = \"127.0.0.1:80\"\n"),
     R"(app.toml:4:8: listen[0].name: must be 1 to 255 of the characters A-Z a-z 0-9 _ . - (it is passed in LISTEN_FDNAMES), got "a:b")"},
    {worker("[[listen]]\naddress = \"127.0.0.1:80\"\nmode = \"reuse\"\n"),
     R"(app.toml:5:8: listen[0].mode: must be "reuseport" or "shared", got "reuse"; did you mean "reuseport"?)"},
    {worker("[[listen]]\naddress = \"unix:/run/app.sock\"\nmode = \"reuseport\"\n"),
     R"(app.toml:5:8: listen[0].mode: must be "shared" for a unix socket: a path can be bound only once, got "reuseport")"},
    {worker("[[listen]]\naddress = \"127.0.0.1:80\"\nbacklog = 0\n"),
     "app.toml:5:11: listen[0].backlog: must be an integer from 1 to 65535, got 0"},
    {worker("[listen]\naddress = \"127.0.0.1:80\"\n"),
     "app.toml:3:1: listen: expected an array of tables ([[listen]]), got a table"},
    {"listen = [1]\n" + worker(), "app.toml:1:11: listen[0]: expected a table, got an integer"},
    // TOML syntax
    {worker("count = \n"), R"(app.toml:3:9: Error while parsing key-value pair: expected value, saw '\n')"},
    {worker("count = 2\ncount = 3\n"),
     "app.toml:4:9: Error while parsing key-value pair: cannot redefine existing integer 'count'"},
};

}  // namespace

TEST_CASE("each bad config gets its exact message", "[config]") {
  REQUIRE(bad_configs.size() >= 30);
  for (const BadConfig& bad : bad_configs) {
    INFO(bad.toml);
    const ConfigResult r = parse_config(bad.toml, "app.toml", 2);
    CHECK_FALSE(r.config.has_value());
    CHECK(messages(r) == std::vector<std::string>{bad.message});
  }
}

TEST_CASE("several errors are all reported - in file order", "[config]") {
  const std::string text =
      "[preforkd]\n"                  // 1
      "log_level = \"loud\"\n"        // 2
      "[worker]\n"                    // 3
      "stop_timeout = 5\n"            // 4
      "count = 0\n"                   // 5
      "command = [\"/bin/app\"]\n"    // 6
      "bogus = 1\n"                   // 7
      "[[listen]]\n"                  // 8
      "address = \"localhost:80\"\n"  // 9
      "[[listen]]\n"                  // 10
      "address = \"127.0.0.1:80\"\n"  // 11
      "backlog = -1\n";               // 12
  const ConfigResult r = parse_config(text, "app.toml", 2);
  CHECK_FALSE(r.config.has_value());
  CHECK(
      messages(r) ==
      std::vector<std::string>{
          R"(app.toml:2:13: preforkd.log_level: must be one of "trace", "debug", "info", "warn" or "error", got "loud")",
          R"(app.toml:4:16: worker.stop_timeout: expected a duration with a unit such as "30s", got 5)",
          R"(app.toml:5:9: worker.count: must be "auto" or an integer from 1 to 1024, got 0)",
          "app.toml:7:1: worker.bogus: unknown key; expected \"backoff_initial\", \"backoff_max\", \"command\", "
          "\"count\", \"cpu_affinity\", \"directory\", \"env\", \"env_file\", \"fatal_exit_codes\", \"group\", \"idle_timeout\", \"log_buffer\", \"max_lifetime\", \"max_memory\", \"max_surge\", "
          "\"memory_sample_interval\", \"min_count\", \"pool\", \"ready\", \"ready_timeout\", \"restart\", \"spare\", \"stall_timeout\", \"stop_signal\", \"stop_timeout\", \"user\" or \"watchdog\"",
          "app.toml:9:11: listen[0].address: invalid address \"localhost:80\": host must be a numeric IPv4 or "
          "[IPv6] address, got localhost",
          "app.toml:12:11: listen[1].backlog: must be an integer from 1 to 65535, got -1",
      });
}

TEST_CASE("the smallest config gets every default", "[config]") {
  const Config c = must_parse(worker());
  CHECK(c.path == "app.toml");
  CHECK(c.daemon == DaemonConfig{});
  CHECK(c.daemon.control_socket.empty());
  CHECK(c.daemon.control_mode == 0600);
  CHECK(c.daemon.log_level == LogLevel::info);
  CHECK(c.daemon.log_format == LogFormat::text);
  CHECK(c.daemon.worker_output == WorkerOutput::log);

  WorkerConfig expected;
  expected.command = {"/bin/app"};
  CHECK(c.worker == expected);
  CHECK(c.worker.count == 1);
  CHECK_FALSE(c.worker.count_auto);
  CHECK(c.worker.ready == ReadyPolicy{ReadyKind::alive, 1s});
  CHECK(c.worker.ready_timeout == 30s);
  CHECK(c.worker.stop_signal == 15);
  CHECK(c.worker.stop_timeout == 30s);
  CHECK(c.worker.restart == RestartMode::always);
  CHECK(c.worker.backoff_initial == 100ms);
  CHECK(c.worker.backoff_max == 30s);
  CHECK(c.worker.fatal_exit_codes.empty());
  CHECK(c.worker.watchdog == 0ms);
  CHECK(c.listeners.empty());
}

TEST_CASE("a full config sets every field", "[config]") {
  const Config c = must_parse(R"(
[preforkd]
control_socket = "/run/preforkd/app.sock"
control_mode   = "0660"
control_group  = "web"
log_level      = "debug"
log_format     = "json"
worker_output  = "inherit"

[worker]
command   = ["/usr/bin/lighttpd", "-D", "-f", "/etc/lighttpd/app.conf"]
count     = 4
directory = "/srv/app"
user      = "www-data"
group     = "www-group"
env       = { ZED = "last", APP_ENV = "production", EMPTY = "" }
ready     = "notify"
ready_timeout = "1m"
stop_signal   = "SIGQUIT"
stop_timeout  = "10s"
restart       = "on-failure"
backoff_initial = "250ms"
backoff_max     = "1m30s"
fatal_exit_codes = [3, 4, 0]
watchdog      = "20s"
max_memory    = ""
max_lifetime  = ""

[[listen]]
name    = "http"
address = "127.0.0.1:8080"
mode    = "shared"
backlog = 128

[[listen]]
address = "[::1]:8443"

[[listen]]
address = "unix:/run/app.sock"
)");
  CHECK(c.daemon.control_socket == "/run/preforkd/app.sock");
  CHECK(c.daemon.control_mode == 0660);
  CHECK(c.daemon.control_group == "web");
  CHECK(c.daemon.log_level == LogLevel::debug);
  CHECK(c.daemon.log_format == LogFormat::json);
  CHECK(c.daemon.worker_output == WorkerOutput::inherit);

  const WorkerConfig& w = c.worker;
  CHECK(w.command == std::vector<std::string>{"/usr/bin/lighttpd", "-D", "-f", "/etc/lighttpd/app.conf"});
  CHECK(w.count == 4);
  CHECK_FALSE(w.count_auto);
  CHECK(w.directory == "/srv/app");
  CHECK(w.user == "www-data");
  CHECK(w.group == "www-group");
  using Var = std::pair<std::string, std::string>;
  CHECK(w.env == std::vector<Var>{{"ZED", "last"}, {"APP_ENV", "production"}, {"EMPTY", ""}});  // file order
  CHECK(w.ready == ReadyPolicy{ReadyKind::notify, 0ms});
  CHECK(w.ready_timeout == 1min);
  CHECK(w.stop_signal == 3);
  CHECK(w.stop_timeout == 10s);
  CHECK(w.restart == RestartMode::on_failure);
  CHECK(w.backoff_initial == 250ms);
  CHECK(w.backoff_max == 90s);
  CHECK(w.fatal_exit_codes == std::vector<int>{3, 4, 0});
  CHECK(w.watchdog == 20s);

  REQUIRE(c.listeners.size() == 3);
  CHECK(c.listeners[0].name == "http");
  CHECK(c.listeners[0].address.family == AddressFamily::ipv4);
  CHECK(c.listeners[0].address.host == "127.0.0.1");
  CHECK(c.listeners[0].address.port == 8080);
  CHECK(c.listeners[0].mode == ListenMode::shared);
  CHECK(c.listeners[0].backlog == 128);
  CHECK(c.listeners[1].name == "listen1");  // named by index when unnamed
  CHECK(c.listeners[1].address.family == AddressFamily::ipv6);
  CHECK(c.listeners[1].address.text == "[::1]:8443");
  CHECK(c.listeners[1].mode == ListenMode::reuseport);
  CHECK(c.listeners[1].backlog == 4096);
  CHECK(c.listeners[2].name == "listen2");
  CHECK(c.listeners[2].address.path == "/run/app.sock");
  CHECK(c.listeners[2].mode == ListenMode::shared);  // the only mode a unix socket can have
}

TEST_CASE("count = auto takes the usable CPUs", "[config]") {
  Config c = must_parse(worker("count = \"auto\"\n"), 6);
  CHECK(c.worker.count == 6);
  CHECK(c.worker.count_auto);
  CHECK(must_parse(worker("count = \"auto\"\n"), 0).worker.count == 1);
  CHECK(must_parse(worker("count = \"auto\"\n"), 5000).worker.count == 1024);
  c = must_parse(worker("count = 1024\n"));
  CHECK(c.worker.count == 1024);
  CHECK_FALSE(c.worker.count_auto);
}

TEST_CASE("other accepted forms", "[config]") {
  CHECK(must_parse(worker("ready = \"immediate\"\n")).worker.ready.kind == ReadyKind::immediate);
  CHECK(must_parse(worker("ready = \"accepting\"\n")).worker.ready == ReadyPolicy{ReadyKind::accepting, 0ms});
  CHECK(must_parse(worker("ready = \"1m30s\"\nready_timeout = \"2m\"\n")).worker.ready ==
        ReadyPolicy{ReadyKind::alive, 90s});
  CHECK(must_parse(worker("stop_signal = \"TERM\"\n")).worker.stop_signal == 15);
  CHECK(must_parse(worker("stop_signal = \"SIGINT\"\n")).worker.stop_signal == 2);
  CHECK(must_parse(worker("stop_signal = \"WINCH\"\n")).worker.stop_signal == 28);
  CHECK(must_parse(worker("stop_signal = 10\n")).worker.stop_signal == 10);
  CHECK(must_parse(worker("restart = \"never\"\n")).worker.restart == RestartMode::never);
  CHECK(must_parse(worker("backoff_initial = \"30s\"\n")).worker.backoff_initial == 30s);
  CHECK(must_parse(worker("watchdog = \"0s\"\n")).worker.watchdog == 0ms);
  CHECK(must_parse("worker = { command = [\"/bin/app\"], count = 3 }\n").worker.count == 3);
  CHECK(must_parse(worker("[worker.env]\nA = \"1\"\n")).worker.env ==
        std::vector<std::pair<std::string, std::string>>{{"A", "1"}});
  CHECK(must_parse("[preforkd]\ncontrol_mode = \"660\"\n" + worker()).daemon.control_mode == 0660);
  const Config c = must_parse(worker("[[listen]]\naddress = \"*:80\"\n[[listen]]\naddress = \"[::]:80\"\n"));
  CHECK(c.listeners[0].address.host == "0.0.0.0");
  CHECK(c.listeners[1].address.host == "::");
}

TEST_CASE("ConfigError::to_string leaves out what it does not have", "[config]") {
  CHECK(ConfigError{"a.toml", 12, 9, "worker.count", "bad"}.to_string() == "a.toml:12:9: worker.count: bad");
  CHECK(ConfigError{"a.toml", 3, 1, "", "syntax"}.to_string() == "a.toml:3:1: syntax");
  CHECK(ConfigError{"a.toml", 0, 0, "", "cannot read: x"}.to_string() == "a.toml: cannot read: x");
  CHECK(ConfigError{"a.toml", 0, 0, "worker", "m"}.to_string() == "a.toml: worker: m");
}

TEST_CASE("load_config reads a file and names it in messages", "[config]") {
  char path[] = "/tmp/preforkd-test-config-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << worker("count = 0\n");
  ConfigResult r = load_config(path, 2);
  CHECK(messages(r) ==
        std::vector<std::string>{std::string(path) +
                                 ":3:9: worker.count: must be \"auto\" or an integer from 1 to 1024, got 0"});
  std::ofstream(path) << worker("count = 3\n");
  r = load_config(path, 2);
  REQUIRE(r.config.has_value());
  CHECK(r.config->path == path);
  CHECK(r.config->worker.count == 3);
  std::remove(path);

  r = load_config(path, 2);
  CHECK(messages(r) == std::vector<std::string>{std::string(path) + ": cannot read: No such file or directory"});
  CHECK(messages(load_config("/tmp", 2)) == std::vector<std::string>{"/tmp: cannot read: Is a directory"});
}

TEST_CASE("enum names", "[config]") {
  CHECK(std::string(to_string(LogLevel::warn)) == "warn");
  CHECK(std::string(to_string(RestartMode::on_failure)) == "on-failure");
  CHECK(std::string(to_string(ListenMode::reuseport)) == "reuseport");
}

TEST_CASE("preforkd.metrics_listen: a TCP address - off when empty", "[config][metrics]") {
  CHECK(must_parse(worker()).daemon.metrics_listen.empty());
  CHECK(must_parse("[preforkd]\nmetrics_listen = \"\"\n" + worker()).daemon.metrics_listen.empty());
  CHECK(must_parse("[preforkd]\nmetrics_listen = \"127.0.0.1:9464\"\n" + worker()).daemon.metrics_listen ==
        "127.0.0.1:9464");
  CHECK(must_parse("[preforkd]\nmetrics_listen = \"[::1]:9464\"\n" + worker()).daemon.metrics_listen == "[::1]:9464");
  const std::vector<BadConfig> bad{
      {"[preforkd]\nmetrics_listen = \"unix:/run/m.sock\"\n" + worker(),
       R"(app.toml:2:18: preforkd.metrics_listen: must be a TCP address such as "127.0.0.1:9464", got "unix:/run/m.sock")"},
      {"[preforkd]\nmetrics_listen = 9464\n" + worker(),
       "app.toml:2:18: preforkd.metrics_listen: expected a string, got an integer"},
  };
  for (const BadConfig& b : bad) {
    INFO(b.toml);
    const ConfigResult r = parse_config(b.toml, "app.toml", 2);
    CHECK_FALSE(r.config.has_value());
    CHECK(messages(r) == std::vector<std::string>{b.message});
  }
  const ConfigResult port = parse_config("[preforkd]\nmetrics_listen = \"127.0.0.1:99999\"\n" + worker(), "app.toml", 2);
  REQUIRE(port.errors.size() == 1);
  CHECK(port.errors[0].to_string().starts_with(
      "app.toml:2:18: preforkd.metrics_listen: invalid address \"127.0.0.1:99999\": port must be 1..65535"));
}

TEST_CASE("max_memory and max_lifetime and memory_sample_interval: recycling limits", "[config]") {
  const ConfigResult off = parse_config(worker("max_memory = \"\"\nmax_lifetime = \"\"\n"), "app.toml", 2);
  REQUIRE(off.config);
  CHECK(off.config->worker.max_memory == 0);
  CHECK(off.config->worker.max_lifetime == Duration::zero());
  CHECK(off.config->worker.memory_sample_interval == std::chrono::seconds(2));
  const ConfigResult on = parse_config(
      worker("max_memory = \"1.5GiB\"\nmax_lifetime = \"6h\"\nmemory_sample_interval = \"500ms\"\n"), "app.toml", 2);
  INFO((on.errors.empty() ? std::string() : on.errors.front().to_string()));
  REQUIRE(on.config);
  CHECK(on.config->worker.max_memory == 1536ull * 1024 * 1024);
  CHECK(on.config->worker.max_lifetime == std::chrono::hours(6));
  CHECK(on.config->worker.memory_sample_interval == std::chrono::milliseconds(500));
  const ConfigResult zero = parse_config(worker("max_lifetime = \"0s\"\n"), "app.toml", 2);
  REQUIRE(zero.config);
  CHECK(zero.config->worker.max_lifetime == Duration::zero());
}

TEST_CASE("log_buffer: a size per slot or 0 for off and bounded in all", "[config]") {
  const ConfigResult dflt = parse_config(worker(), "app.toml", 2);
  REQUIRE(dflt.config);
  CHECK(dflt.config->worker.log_buffer == 64 * 1024);
  const ConfigResult off = parse_config(worker("log_buffer = \"0\"\n"), "app.toml", 2);
  REQUIRE(off.config);
  CHECK(off.config->worker.log_buffer == 0);
  const ConfigResult big = parse_config(worker("log_buffer = \"16MiB\"\n"), "app.toml", 2);
  REQUIRE(big.config);
  CHECK(big.config->worker.log_buffer == 16 * 1024 * 1024);
  // 32 workers of 16 MiB: 512 MiB, past the 256 MiB bound for all slots together.
  const ConfigResult many =
      parse_config("[worker]\ncommand = [\"/bin/true\"]\ncount = 32\nlog_buffer = \"16MiB\"\n", "app.toml", 2);
  CHECK_FALSE(many.config);
  REQUIRE(many.errors.size() == 1);
  CHECK(many.errors.front().to_string() ==
        R"(app.toml:4:14: worker.log_buffer: "16MiB" per slot for 32 workers is more than the 256 MiB the master keeps )"
        "for worker output in all");
}
