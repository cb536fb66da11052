// The master's messages (issue 21): the version banner is the first line of the log, on a
// good start and on a failed one; every new worker process gets an info line with its slot
// and pid; counts say "1 worker", not "1 workers"; durations read as people write them.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <regex>

#include "control_helpers.hpp"

using namespace bt;

namespace {

// "preforkd 0.1.0", as --version prints it.
std::string version_line() {
  const auto [code, out] = run_preforkd({"--version"});
  REQUIRE(code == 0);
  return out.substr(0, out.find('\n'));
}

std::string first_line(const std::string& log) { return log.substr(0, log.find('\n')); }

// The banner of a master that started on the harness's config.
std::string banner(const Daemon& d) {
  return version_line() + " (pid " + std::to_string(d.pid()) + ") starting with '" + d.config_path() + "'";
}

// The info line of a worker process's start.
std::string started(int slot, pid_t pid) {
  return "info  worker " + std::to_string(slot) + " (pid " + std::to_string(pid) + ") started";
}

std::string worker_section(const std::string& line) {
  return "[worker]\ncommand = [" + toml_string(demo_bin()) + "]\n" + line + "\n";
}

}  // namespace

TEST_CASE("messages: the first log line is the version banner") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 1}));
  REQUIRE(wait_workers_ready(d, 1));
  const std::string log = d.log();
  INFO(log);
  CHECK(first_line(log).find(" info  " + banner(d)) != std::string::npos);
  stop_cleanly(d);
}

TEST_CASE("messages: the banner comes first also when binding fails") {
  // A plain listener, without SO_REUSEPORT, so that preforkd cannot join it.
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(holder >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(holder, 16) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  const int port = ntohs(a.sin_port);

  Daemon d(toml({.address = local_address(port), .count = 1}));
  CHECK(d.wait_exit() == 1);
  const std::string log = d.log();
  INFO(log);
  CHECK(first_line(log).find(" info  " + banner(d)) != std::string::npos);
  CHECK(log.find("error ") != std::string::npos);
  CHECK(no_process_left(d.pid()));
  ::close(holder);
}

TEST_CASE("messages: the banner comes first also when the config is bad - then the error with its place") {
  Daemon d(worker_section("count = 0"));
  CHECK(d.wait_exit() == 78);
  const std::string log = d.log();
  INFO(log);
  CHECK(first_line(log).find(" info  " + banner(d)) != std::string::npos);
  CHECK(log.find(" error " + d.config_path() + ":3:9: worker.count: ") != std::string::npos);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("messages: every new worker process logs its slot and pid - first start - crash - scale - reload") {
  const int port = free_port();
  DemoConfig c{.address = local_address(port), .count = 2, .ready = "notify"};
  Daemon d(toml(c));
  REQUIRE(wait_workers_ready(d, 2));
  auto pid_of = [&](int slot) { return worker_pid(d.pid(), slot); };
  const pid_t first0 = pid_of(0), first1 = pid_of(1);
  // The log as it is once the line was waited for, not as it was when the test began.
  auto expect_started = [&](int slot, pid_t pid) {
    const bool seen = d.wait_log(started(slot, pid));
    INFO("slot " << slot << ", pid " << pid << ", log:\n" << d.log());
    CHECK(seen);
  };
  CHECK(d.count_log(started(0, first0)) == 1);
  CHECK(d.count_log(started(1, first1)) == 1);

  // After a crash. Each pid read once: a scan of /proc while a process comes or goes may
  // miss it, and the line to wait for must name the pid that was found.
  REQUIRE(::kill(first0, SIGKILL) == 0);
  pid_t next0 = -1;
  REQUIRE(wait_until([&] {
    next0 = pid_of(0);
    return next0 > 0 && next0 != first0;
  }));
  expect_started(0, next0);

  // A scale up.
  REQUIRE(ctl(d, {"scale", "3"}).exit_code == 0);
  pid_t new2 = -1;
  REQUIRE(wait_until([&] { return (new2 = pid_of(2)) > 0; }));
  expect_started(2, new2);

  // A reload that replaces every worker.
  c.count = 3;
  c.worker = "env = { RELOADED = \"1\" }\n";
  rewrite_config(d, toml(c));
  REQUIRE(ctl(d, {"reload"}).exit_code == 0);
  for (int slot = 0; slot < 3; ++slot) expect_started(slot, pid_of(slot));
  stop_cleanly(d);
}

TEST_CASE("messages: one worker is 1 worker in the scale messages and in check") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  REQUIRE(wait_workers_ready(d, 2));
  const CtlResult scaled = ctl(d, {"scale", "1"});
  INFO("stdout: " << scaled.out << "\nstderr: " << scaled.err);
  CHECK(scaled.exit_code == 0);
  CHECK(scaled.out.find("scaled from 2 to 1 worker") != std::string::npos);
  REQUIRE(d.wait_log("now running 1 worker"));
  REQUIRE(wait_workers_ready(d, 1));
  const CtlResult check = ctl(d, {"check"});
  INFO("check: " << check.out << check.err);
  CHECK((check.out + check.err).find("1/1 worker ready") != std::string::npos);
  stop_cleanly(d);
  const std::string log = d.log();
  INFO(log);
  CHECK(log.find("stopping 1 worker (graceful)") != std::string::npos);
  CHECK(log.find("1 workers") == std::string::npos);
}

TEST_CASE("messages: a backoff delay reads as 1.49s - not 1s489ms") {
  const int port = free_port();
  // Slot 0 crashes 50 ms after each start; its restarts back off from 1.5 s, with jitter.
  Daemon d(toml({.address = local_address(port),
                 .count = 1,
                 .args = {"--crash-after-ms", "50", "--no-ready"},
                 .ready = "notify",
                 .worker = "backoff_initial = \"1500ms\"\nbackoff_max = \"1900ms\"\n"}));
  REQUIRE(d.wait_log("worker 0: restarting in"));
  const std::string log = d.log();
  INFO(log);
  // Every delay in people's form: ms under a second, seconds with at most two decimals.
  const std::regex delay(R"(restarting in (\S+) \(crash)");
  int seen = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), delay); it != std::sregex_iterator(); ++it) {
    const std::string text = (*it)[1];
    INFO(text);
    CHECK(std::regex_match(text, std::regex(R"(\d{1,3}ms|\d{1,2}(\.\d{1,2})?s)")));
    ++seen;
  }
  CHECK(seen >= 1);
}
