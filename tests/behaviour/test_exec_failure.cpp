// Exec failure: a worker command that cannot be run at all fails the start at once, with
// one error naming the command, the path it resolved to, the working directory and PATH
// (as systemd fails a unit with 203/EXEC). After a successful start, a binary that goes
// away keeps its slot backing off, one warning per attempt, while the other slots serve.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <regex>
#include <sstream>

#include <preforkd/core/units.hpp>

#include "control_helpers.hpp"
#include "systemd_helpers.hpp"

using namespace bt;

namespace {

// The delays of "worker <slot>: cannot execute ...; restarting in 1.2s (...)" lines, in log order.
std::vector<Ms> backoff_delays(const std::string& log, int slot) {
  std::vector<Ms> out;
  const std::regex line("worker " + std::to_string(slot) + ": cannot execute [^\n]*; restarting in ([0-9a-z.]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it) {
    const auto delay = preforkd::parse_duration((*it)[1].str());
    REQUIRE(delay);
    out.push_back(*delay);
  }
  return out;
}

// The log lines that contain `needle`.
std::vector<std::string> lines_with(const std::string& log, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

std::string path_env() {
  const char* p = std::getenv("PATH");
  return p != nullptr ? p : "/usr/bin:/bin";
}

constexpr auto ready_timeout = 20s;

DemoConfig failing(int port, std::vector<std::string> command, const std::string& worker_lines = "") {
  return {.address = local_address(port),
          .count = 2,
          .worker = "ready_timeout = \"20s\"\nbackoff_initial = \"100ms\"\n" + worker_lines,
          .command = std::move(command)};
}

// preforkd exits 1 within ready_timeout, with exactly one error line, which contains each
// of `expected`, and leaves nothing behind.
void check_start_fails(Daemon& d, const std::vector<std::string>& expected) {
  const auto started = std::chrono::steady_clock::now();
  const auto code = d.wait_exit(ready_timeout + 10s);
  const auto took = std::chrono::steady_clock::now() - started;
  const std::string log = d.log();
  INFO(log);
  REQUIRE(code);
  CHECK(*code == 1);
  CHECK(took < ready_timeout);
  const auto errors = lines_with(log, " error ");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].find("cannot start any worker: cannot execute '") != std::string::npos);
  for (const auto& e : expected) CHECK(errors[0].find(e) != std::string::npos);
  CHECK(lines_with(log, "cannot execute").size() == 1);  // not one line per attempt
  CHECK(no_process_left(d.pid()));
}

}  // namespace

TEST_CASE("a missing worker binary fails the start with one error naming it") {
  TempDir dir;
  const std::string program = dir.file("no-such-server");
  Daemon d(toml(failing(free_port(), {program, "--flag"})));
  check_start_fails(
      d, {"cannot execute '" + program + "': No such file or directory", "working directory '", "PATH=" + path_env()});
}

TEST_CASE("a typo in the command fails the start and names the PATH it was searched in") {
  Daemon d(toml(failing(free_port(), {"gunicornn-preforkd-typo"})));
  check_start_fails(d, {"cannot execute 'gunicornn-preforkd-typo': No such file or directory (not found in PATH=" +
                        path_env() + "; working directory '"});
}

TEST_CASE("a relative command that does not resolve names the directory it was resolved against") {
  TempDir dir;
  Daemon d(toml(failing(free_port(), {"./app.py"}, "directory = " + toml_string(dir.path()) + "\n")));
  check_start_fails(d, {"cannot execute './app.py': No such file or directory (resolved to '" + dir.file("app.py") +
                        "' against the working directory '" + dir.path() + "'"});
}

TEST_CASE("a worker binary without execute permission fails the start with EACCES") {
  TempDir dir;
  const std::string script = dir.file("server.sh");
  dir.write("server.sh", "#!/bin/sh\nexec sleep 1000\n");
  REQUIRE(::chmod(script.c_str(), 0644) == 0);
  Daemon d(toml(failing(free_port(), {script})));
  check_start_fails(d, {"cannot execute '" + script + "': Permission denied"});
}

TEST_CASE("under systemd a command that cannot run fails the unit before READY=1", "[systemd]") {
  sd::FakeSystemd systemd;
  auto d = sd::start_daemon(toml(failing(free_port(), {"gunicornn-preforkd-typo"})),
                            {{"NOTIFY_SOCKET", systemd.path()}, {"WATCHDOG_USEC", std::nullopt}});
  const auto code = d->wait_exit(ready_timeout + 10s);
  INFO(d->log());
  CHECK(code == std::optional<int>(1));
  CHECK(systemd.count("READY=1") == 0);
  // What systemctl status shows: the reason. The fake systemd reads its socket on a thread
  // of its own: the datagram sent before the exit may still be on its way to that thread.
  const auto said_why = [&] {
    for (const auto& m : systemd.messages())
      if (m.get("STATUS").value_or("").find("cannot execute 'gunicornn-preforkd-typo'") != std::string::npos)
        return true;
    return false;
  };
  CHECK(wait_until(said_why));
}

TEST_CASE("a worker binary removed after a successful start backs off with one warning per attempt") {
  TempDir dir;
  const std::string script = dir.file("server.sh");
  dir.write("server.sh", "#!/bin/sh\nexec " + demo_bin() + " \"$@\"\n");
  REQUIRE(::chmod(script.c_str(), 0755) == 0);
  const int port = free_port();
  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .worker = "backoff_initial = \"100ms\"\nbackoff_max = \"5s\"\n",
                 .command = {script}}));
  const auto before = wait_workers_ready(d, 2);
  REQUIRE(before);
  const int restarts_before = (*before)["workers"][0]["restarts"].get<int>();

  // The binary goes (a deploy in progress), then slot 0's worker dies.
  REQUIRE(::unlink(script.c_str()) == 0);
  const pid_t victim = pids_in(*before)[0];
  REQUIRE(::kill(victim, SIGKILL) == 0);
  // Four backoffs: ~100, ~200, ~400, ~800 ms with jitter, about 1.5 s in all.
  REQUIRE(wait_until([&] { return backoff_delays(d.log(), 0).size() >= 4; }));

  // Still running, slot 1 still serving.
  CHECK_FALSE(d.wait_exit(0ms));
  const auto h = hello(port);
  REQUIRE(h);
  CHECK(h->slot == 1);
  const auto status = status_of(d);
  REQUIRE(status);
  const auto& w0 = (*status)["workers"][0];
  INFO(w0.dump());
  CHECK(w0["last_exit"]["cause"] == "exec failed");
  CHECK(w0["last_exit"]["text"].get<std::string>().find("exec failed") != std::string::npos);
  const auto table = ctl(d, {"status"});
  CHECK(table.out.find("exec failed") != std::string::npos);

  const std::string log = d.log();
  INFO(log);
  const auto delays = backoff_delays(log, 0);
  CHECK(delays[0] >= 100ms);
  for (std::size_t i = 1; i < 4; ++i) CHECK(delays[i] > delays[i - 1]);
  // One warning per attempt: no info lines about the same attempts, one line per process.
  const auto reports = lines_with(log, "worker 0: cannot execute '" + script + "': No such file or directory");
  for (const auto& line : reports) CHECK(line.find(" warn ") != std::string::npos);
  CHECK(lines_with(log, "worker 0: restarting in").empty());
  CHECK(lines_with(log, "worker 0: starting again").size() == 1);  // after the kill, before the first exec
  const int attempts = (*status)["workers"][0]["restarts"].get<int>() - restarts_before;
  CHECK(static_cast<int>(reports.size()) >= attempts - 1);  // the last may not be reaped yet
  CHECK(static_cast<int>(reports.size()) <= attempts);
  CHECK(lines_with(log, " error ").empty());

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}
