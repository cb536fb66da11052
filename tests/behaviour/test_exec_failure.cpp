// Exec failure: a worker binary that cannot be executed is reported with its path and
// errno, and its slot backs off like a crash (never a tight loop) while preforkd lives on.

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <regex>

#include "harness.hpp"

using namespace bt;

namespace {

// The delays of "worker <slot>: restarting in 1s200ms (...)" lines, in log order.
std::vector<Ms> backoff_delays(const std::string& log, int slot) {
  std::vector<Ms> out;
  const std::regex line("worker " + std::to_string(slot) + ": restarting in ([0-9a-z]+)");
  const std::regex part("([0-9]+)(ms|s|m|h)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it) {
    const std::string text = (*it)[1];
    Ms total{0};
    for (auto p = std::sregex_iterator(text.begin(), text.end(), part); p != std::sregex_iterator(); ++p) {
      const long n = std::stol((*p)[1]);
      const std::string unit = (*p)[2];
      total += unit == "ms" ? Ms(n) : unit == "s" ? Ms(n * 1000) : unit == "m" ? Ms(n * 60'000) : Ms(n * 3'600'000);
    }
    out.push_back(total);
  }
  return out;
}

int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

// Runs `program` as the worker and checks the report, the backoff and a clean stop.
void check_exec_failure(const std::string& program, const std::string& why) {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port),
                 .count = 1,
                 .worker = "backoff_initial = \"100ms\"\nbackoff_max = \"5s\"\n",
                 .command = {program, "--flag"}}));
  // Four backoffs: ~100, ~200, ~400, ~800 ms with jitter, about 1.5 s in all.
  REQUIRE(wait_until([&] { return d.count_log("worker 0: restarting in") >= 4; }));
  const std::string log = d.log();
  INFO(log);
  CHECK(log.find("cannot execute '" + program + "': " + why) != std::string::npos);

  const auto delays = backoff_delays(log, 0);
  REQUIRE(delays.size() >= 4);
  CHECK(delays[0] >= 100ms);
  for (std::size_t i = 1; i < 4; ++i) CHECK(delays[i] > delays[i - 1]);
  // One immediate attempt, then one attempt per backoff: not hundreds.
  const int attempts = count(log, "cannot execute '");
  CHECK(attempts >= 4);
  CHECK(attempts <= static_cast<int>(delays.size()) + 1);

  CHECK_FALSE(d.wait_exit(0ms));  // preforkd itself keeps running
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}

}  // namespace

TEST_CASE("a missing worker binary is reported with its path and backs off") {
  TempDir dir;
  check_exec_failure(dir.file("no-such-server"), "No such file or directory");
}

TEST_CASE("a worker binary without execute permission is reported with its path and backs off") {
  TempDir dir;
  const std::string script = dir.file("server.sh");
  dir.write("server.sh", "#!/bin/sh\nexec sleep 1000\n");
  REQUIRE(::chmod(script.c_str(), 0644) == 0);
  check_exec_failure(script, "Permission denied");
}
