// Exits that mean "do not respawn": fatal_exit_codes, restart = "never", and
// restart = "on-failure" after a clean exit. The other slots keep serving.

#include <catch2/catch.hpp>
#include <csignal>

#include "harness.hpp"

using namespace bt;

namespace {

// Slot 0 exits with `code` 100 ms after each start; slots 1.. are healthy.
DemoConfig exiting_slot0(int port, int count, int code, const std::string& worker) {
  return {.address = local_address(port),
          .count = count,
          .args = {"--slot-only", "0", "--exit-after-ms", "100", "--exit-code", std::to_string(code)},
          .worker = worker};
}

std::string exit_line(int code) {
  return ") exited with status " + std::to_string(code);
}

// Count of lines "worker 0 (pid N) exited with status <code>".
int slot0_exits(const Daemon& d, int code) {
  const std::string log = d.log();
  int n = 0;
  for (auto pos = log.find("worker 0 (pid "); pos != std::string::npos; pos = log.find("worker 0 (pid ", pos + 1)) {
    const auto end = log.find('\n', pos);
    if (log.substr(pos, end - pos).find(exit_line(code)) != std::string::npos) ++n;
  }
  return n;
}

// After slot 0 left for good: the other slots answer every request for a while (time
// in which a respawned slot 0 would have started and exited again), and slot 0 stays
// empty with its exit logged exactly once.
void check_slot0_stays_down(const Daemon& d, int port, int code, int others) {
  const LoadStats load = hello_load(port, 1500ms, 1, 10ms);
  CHECK(load.failed == 0);
  CHECK(load.answered >= 20);
  CHECK_FALSE(load.by_slot.contains(0));
  CHECK(static_cast<int>(load.by_slot.size()) == others);
  CHECK(worker_pid(d.pid(), 0) == -1);
  INFO(d.log());
  CHECK(slot0_exits(d, code) == 1);
  CHECK(d.count_log("worker 0: restarting in") == 0);
}

void stop(Daemon& d) {
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}

}  // namespace

TEST_CASE("an exit code in fatal_exit_codes marks the slot failed instead of respawning it") {
  const int port = free_port();
  Daemon d(toml(exiting_slot0(port, 3, 42, "fatal_exit_codes = [42]\n")));
  REQUIRE(d.wait_log(exit_line(42)));
  REQUIRE(d.wait_log("worker 0 (pid"));
  CHECK(d.wait_log("failed; not restarting it"));
  REQUIRE(distinct_workers(port, 2).size() == 2);
  check_slot0_stays_down(d, port, 42, 2);
  stop(d);
}

TEST_CASE("restart = never leaves a slot down after its worker exits") {
  const int port = free_port();
  SECTION("with a failure status: failed") {
    Daemon d(toml(exiting_slot0(port, 2, 1, "restart = \"never\"\n")));
    REQUIRE(d.wait_log(exit_line(1)));
    CHECK(d.wait_log("worker 0 (pid"));
    CHECK(d.wait_log("failed; not restarting it"));
    check_slot0_stays_down(d, port, 1, 1);
    stop(d);
  }
  SECTION("with status 0: stopped") {
    Daemon d(toml(exiting_slot0(port, 2, 0, "restart = \"never\"\n")));
    REQUIRE(d.wait_log(exit_line(0)));
    check_slot0_stays_down(d, port, 0, 1);
    stop(d);
  }
}

TEST_CASE("restart = on-failure respawns after a failure status only") {
  const int port = free_port();
  SECTION("status 0: not restarted") {
    Daemon d(toml(exiting_slot0(port, 2, 0, "restart = \"on-failure\"\n")));
    REQUIRE(d.wait_log(exit_line(0)));
    check_slot0_stays_down(d, port, 0, 1);
    CHECK(d.count_log("failed; not restarting it") == 0);
    stop(d);
  }
  SECTION("status 1: restarted") {
    Daemon d(toml(exiting_slot0(port, 2, 1, "restart = \"on-failure\"\n")));
    REQUIRE(d.wait_log(exit_line(1)));
    // A new worker takes slot 0 and exits in turn.
    CHECK(wait_until([&] { return slot0_exits(d, 1) >= 2; }));
    CHECK(d.count_log("failed; not restarting it") == 0);
    stop(d);
  }
}
