// Master death: when the master is killed outright, its workers die too (parent-death
// signal), so no worker outlives it.

#include <catch2/catch.hpp>
#include <csignal>

#include "harness.hpp"

using namespace bt;

TEST_CASE("killing the master leaves no worker") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 3}));
  REQUIRE(distinct_workers(port, 3).size() == 3);
  std::vector<pid_t> workers;
  for (int slot = 0; slot < 3; ++slot) workers.push_back(worker_pid(d.pid(), slot));
  for (pid_t w : workers) REQUIRE(process_alive(w));

  d.signal(SIGKILL);
  REQUIRE(d.wait_exit() == 128 + SIGKILL);
  for (pid_t w : workers) {
    INFO("worker " << w);
    CHECK(wait_until([&] { return !process_alive(w); }));
  }
  CHECK(no_process_left(d.pid()));
  CHECK_FALSE(hello(port, 2s));  // nobody serves the port any more
}
