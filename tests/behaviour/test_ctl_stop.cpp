// `preforkctl stop`: a graceful stop of every worker and the master, which exits 0 and
// leaves no process behind.

#include <catch2/catch.hpp>
#include <filesystem>

#include "control_helpers.hpp"

using namespace bt;

TEST_CASE("preforkctl stop stops the workers and the master, which exits 0", "[control]") {
  const int port = free_port();
  // notify: a worker counts as ready once it has set up its signal handling, so a TERM
  // finds it able to stop gracefully.
  Daemon d(toml({.address = local_address(port), .count = 2, .ready = "notify"}));
  const auto s = wait_workers_ready(d, 2, 0);
  REQUIRE(s);
  const auto pids = pids_in(*s);
  REQUIRE(processes_of_master(d.pid()).size() == 2);
  REQUIRE(std::filesystem::exists(control_socket(d)));

  const CtlResult r = ctl(d, {"stop"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 0);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
  for (pid_t p : pids) CHECK_FALSE(process_alive(p));
  // Gracefully: each worker exited by itself on TERM.
  for (std::size_t slot = 0; slot < pids.size(); ++slot)
    CHECK(d.count_log("worker " + std::to_string(slot) + " (pid " + std::to_string(pids[slot]) +
                      ") exited with status 0") == 1);
  // The master removed its socket; preforkctl now finds nobody there.
  CHECK_FALSE(std::filesystem::exists(control_socket(d)));
  CHECK(ctl(d, {"status"}).exit_code == 69);
}
