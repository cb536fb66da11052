// `preforkctl stop`: a graceful stop of every worker and the master, which exits 0 and
// leaves no process behind; preforkctl returns once the master has exited, or says that it
// is still stopping when --timeout ends first.

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>

#include "control_helpers.hpp"

using namespace bt;

TEST_CASE("preforkctl stop stops the workers and the master - which exits 0", "[control]") {
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
  // It returned once the master had exited (SPEC), and says how it ended.
  CHECK_FALSE(process_alive(d.pid()));
  CHECK(r.out == "stopped (pid " + std::to_string(d.pid()) + ", 2 workers)\n");
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

TEST_CASE("preforkctl stop --timeout says the master is still stopping when it ends first", "[control]") {
  const int port = free_port();
  // The worker ignores TERM, so the master waits its stop_timeout (60s) before SIGKILL.
  Daemon d(toml({.address = local_address(port),
                 .count = 1,
                 .args = {"--ignore-term"},
                 .ready = "notify",
                 .stop_timeout = "60s"}));
  REQUIRE(wait_workers_ready(d, 1, 0));

  const CtlResult r = ctl(d, {"--timeout", "1s", "stop"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("timed out after 1s; preforkd (pid " + std::to_string(d.pid()) + ") is still stopping") !=
        std::string::npos);
  CHECK(process_alive(d.pid()));
  // QUIT: the fast stop, so the test does not wait out the 60s.
  d.signal(SIGQUIT);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}
