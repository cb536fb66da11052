// Crash loop: a slot whose worker keeps crashing backs off, while the other workers keep
// serving and every fresh connection is answered (none waits on the dead slot's socket).

#include <catch2/catch.hpp>
#include <csignal>
#include <set>

#include "control_helpers.hpp"

using namespace bt;

TEST_CASE("a crash-looping worker backs off while the others answer every fresh connection") {
  const int port = free_port();
  // Slot 1 dies of SIGSEGV 50 ms after each start and never says READY=1, so it never
  // counts as ready, however slowly a loaded machine runs it (a ready delay would race
  // with the crash timer).
  Daemon d(toml({.address = local_address(port),
                 .count = 3,
                 .args = {"--slot-only", "1", "--crash-after-ms", "50", "--no-ready"},
                 .ready = "notify",
                 .worker = "backoff_initial = \"200ms\"\nbackoff_max = \"2s\"\n"}));
  const std::string crash = "exited on signal 11";

  // Preconditions: the healthy slots serve, and slot 1 is already crash-looping.
  std::set<int> seen;
  REQUIRE(wait_until([&] {
    if (auto h = hello(port, 5s)) seen.insert(h->slot);
    return seen.contains(0) && seen.contains(2);
  }));
  REQUIRE(d.wait_log("worker 1: restarting in"));
  const pid_t slot0 = worker_pid(d.pid(), 0), slot2 = worker_pid(d.pid(), 2);
  REQUIRE(slot0 > 0);
  REQUIRE(slot2 > 0);
  const int crashes_before = d.count_log(crash);

  // ~3 s of fresh connections from four concurrent clients, each one after another. The
  // timeout alone would not catch a connection queued on the dead slot's socket (the
  // next worker of slot 1 answers it within the backoff, at most ~2 s), so a slow answer
  // counts as a failure too: a hello on loopback takes milliseconds.
  const LoadStats load = hello_load(port, 3s, 4, 2ms, 5s, 1s);
  INFO("answered " << load.answered << ", failed " << load.failed << ", slow " << load.slow << ", slowest "
                   << load.slowest.count() << " ms");
  std::string per_slot;
  for (auto [slot, n] : load.by_slot) per_slot += "slot " + std::to_string(slot) + ": " + std::to_string(n) + "; ";
  INFO(per_slot);
  CHECK(load.answered >= 100);
  CHECK(load.failed == 0);
  CHECK(load.slow == 0);
  CHECK(load.by_slot.contains(0));
  CHECK(load.by_slot.contains(2));

  // The loop really ran during the load, and slowly: no tight loop.
  const int crashes = d.count_log(crash);
  INFO(d.log());
  CHECK(crashes > crashes_before);
  CHECK(crashes < 25);
  CHECK(d.count_log("worker 1: restarting in") >= 2);
  CHECK(worker_pid(d.pid(), 0) == slot0);
  CHECK(worker_pid(d.pid(), 2) == slot2);

  // Status counts every crash of slot 1 as a crash (not a replacement), and its last exit.
  const auto status = status_of(d);
  REQUIRE(status);
  INFO(status->dump());
  const auto& slot1 = (*status)["workers"][1];
  CHECK(slot1.value("crashes", -1) >= crashes);
  CHECK(slot1.value("replacements", -1) == 0);
  CHECK(slot1["last_exit"].value("signal", 0) == SIGSEGV);
  CHECK((*status)["workers"][0].value("crashes", -1) == 0);
  CHECK((*status)["workers"][2].value("crashes", -1) == 0);

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}
