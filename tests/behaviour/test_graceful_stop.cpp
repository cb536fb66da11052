// Stopping: TERM lets in-flight requests finish, escalates to SIGKILL after stop_timeout,
// QUIT kills at once, and nothing a worker started outlives the stop.

#include <catch2/catch.hpp>
#include <csignal>

#include "harness.hpp"

using namespace bt;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<pid_t> workers_of(pid_t master, int count) {
  std::vector<pid_t> pids;
  for (int slot = 0; slot < count; ++slot) pids.push_back(worker_pid(master, slot));
  return pids;
}

}  // namespace

TEST_CASE("a graceful stop lets a slow in-flight request finish") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  REQUIRE(distinct_workers(port, 2).size() == 2);
  const auto workers = workers_of(d.pid(), 2);
  REQUIRE(workers[0] > 0);
  REQUIRE(workers[1] > 0);
  // Idle: each holds its listening socket only.
  REQUIRE(wait_until([&] { return open_sockets(workers[0]) == 1 && open_sockets(workers[1]) == 1; }));

  // In flight: the request has reached the worker's socket and the worker has accepted
  // the connection. (Signalling at accept alone races with the request: a worker that
  // stops rightly closes connections on which no request has arrived yet.)
  const auto started = Clock::now();
  PendingGet slow(port, "/sleep?ms=1500");
  REQUIRE(slow.sent());
  REQUIRE(
      wait_until([&] { return slow.delivered() && (open_sockets(workers[0]) > 1 || open_sockets(workers[1]) > 1); }));
  d.signal(SIGTERM);
  const auto term_after = Clock::now() - started;
  REQUIRE(term_after < 1500ms);  // so the answer cannot have been sent before the stop began

  const auto r = slow.response(30s);
  const auto took = Clock::now() - started;
  INFO("TERM after " << std::chrono::duration_cast<Ms>(term_after).count() << " ms, answered after "
                     << std::chrono::duration_cast<Ms>(took).count() << " ms");
  INFO(d.log());
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(took >= 1500ms);
  CHECK(d.wait_exit() == 0);
  CHECK(d.count_log("exited with status 0") == 2);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("a worker that ignores SIGTERM is killed after stop_timeout") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2, .args = {"--ignore-term"}, .stop_timeout = "1s"}));
  REQUIRE(distinct_workers(port, 2).size() == 2);

  const auto started = Clock::now();
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  const auto took = Clock::now() - started;
  INFO(d.log());
  CHECK(took >= 900ms);  // the workers were given their stop_timeout
  CHECK(d.count_log("did not stop within 1s") == 2);
  CHECK(d.count_log("exited on signal 9") == 2);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("SIGQUIT stops at once - without waiting for stop_timeout") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2, .args = {"--ignore-term"}, .stop_timeout = "60s"}));
  REQUIRE(distinct_workers(port, 2).size() == 2);

  SECTION("instead of a graceful stop") {
    d.signal(SIGQUIT);
  }
  SECTION("during a graceful stop that waits for workers ignoring SIGTERM") {
    d.signal(SIGTERM);
    REQUIRE(d.wait_log("stopping 2 workers (graceful)"));
    d.signal(SIGQUIT);
  }
  CHECK(d.wait_exit(20s) == 0);  // far below stop_timeout
  INFO(d.log());
  CHECK(d.count_log("exited on signal 9") == 2);
  // Nothing timed out: the log must not tell the operator otherwise.
  CHECK(d.count_log("did not stop") == 0);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("no child of a worker outlives a stop") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2, .args = {"--spawn-child"}}));
  REQUIRE(distinct_workers(port, 2).size() == 2);
  // Two workers and a sleeping child of each.
  REQUIRE(wait_until([&] { return processes_of_master(d.pid()).size() == 4; }));

  SECTION("graceful") {
    d.signal(SIGTERM);
    CHECK(d.wait_exit() == 0);
  }
  SECTION("fast") {
    d.signal(SIGQUIT);
    CHECK(d.wait_exit() == 0);
  }
  CHECK(no_process_left(d.pid()));
}

// systemd (or an operator) may stop the service in its first instant. A master that has not
// yet put its handlers in place must not die of the default action with its sockets and
// cgroups half made: the signal waits until it can be handled, and the stop is a clean one.
TEST_CASE("a SIGTERM sent while the master starts stops it cleanly") {
  for (const int sig : {SIGTERM, SIGINT}) {
    INFO("signal " << sig);
    const int port = free_port();
    Daemon d(toml({.address = local_address(port), .count = 2}), {}, sig);
    const std::optional<int> code = d.wait_exit();
    INFO("exit status " << (code ? std::to_string(*code) : std::string("none: still running")) << "; log:\n" << d.log());
    CHECK(code == std::optional<int>(0));
    CHECK(no_process_left(d.pid()));
  }
}
