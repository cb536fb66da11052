// Worker output: stdout and stderr lines go to the master's log prefixed with the slot
// and pid (worker_output = "log", the default), or straight through ("inherit").

#include <catch2/catch.hpp>
#include <csignal>

#include "harness.hpp"

using namespace bt;

TEST_CASE("worker output is logged line by line with the slot and pid") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2, .args = {"--print-stdout"}}));
  REQUIRE(distinct_workers(port, 2).size() == 2);
  for (int slot = 0; slot < 2; ++slot) {
    const pid_t pid = worker_pid(d.pid(), slot);
    REQUIRE(pid > 0);
    const std::string prefix = "worker " + std::to_string(slot) + " (pid " + std::to_string(pid) + "): ";
    // stdout at start
    CHECK(d.wait_log(prefix + "demo worker " + std::to_string(slot) + " started (pid " + std::to_string(pid) + ")\n"));
  }
  const pid_t pid0 = worker_pid(d.pid(), 0);
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  INFO(d.log());
  // stderr at a graceful stop, logged before the exit.
  CHECK(d.count_log("worker 0 (pid " + std::to_string(pid0) + "): demo worker 0 stopping\n") == 1);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("worker_output = inherit passes worker output through unprefixed") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .args = {"--print-stdout"},
                 .preforkd = "worker_output = \"inherit\"\n"}));
  REQUIRE(distinct_workers(port, 2).size() == 2);
  for (int slot = 0; slot < 2; ++slot) {
    const pid_t pid = worker_pid(d.pid(), slot);
    REQUIRE(pid > 0);
    const std::string line = "demo worker " + std::to_string(slot) + " started (pid " + std::to_string(pid) + ")\n";
    CHECK(d.wait_log(line));
    const std::string log = d.log();
    const auto at = log.find(line);
    INFO(log);
    CHECK((at == 0 || log[at - 1] == '\n'));  // the whole line, no prefix
  }
  CHECK(d.count_log("): demo worker") == 0);
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}
