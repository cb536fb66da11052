// Worker watchdog (worker.watchdog > 0): workers get WATCHDOG_USEC and WATCHDOG_PID as
// under systemd; one that sends no WATCHDOG=1 within the period is stopped and replaced,
// with "watchdog timeout" in the log; one that pings is left alone.

#include "harness.hpp"
#include "systemd_helpers.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <thread>

using namespace bt;
using namespace bt::sd;

namespace {

// /env of the worker with pid `pid`, asked until it answers (a single worker, or any).
std::optional<nlohmann::json> env_of(int port, pid_t pid) {
  std::optional<nlohmann::json> out;
  wait_until([&] {
    auto env = worker_env(port);
    if (!env || (*env)["pid"] != pid) return false;
    out = env;
    return true;
  });
  return out;
}

}  // namespace

TEST_CASE("a worker that sends no WATCHDOG=1 is killed and replaced", "[systemd]") {
  const int port = free_port();
  // --no-watchdog applies to every worker (it is not slot-gated): one worker only.
  const auto started = Clock::now();
  Daemon d(toml({.address = local_address(port),
                 .count = 1,
                 .args = {"--no-watchdog"},
                 .stop_timeout = "2s",
                 .worker = "watchdog = \"1s\"\n"}));
  pid_t first = -1;
  REQUIRE(wait_until([&] { return (first = worker_pid(d.pid(), 0)) > 0; }));

  // It sees the watchdog exactly as a systemd service would.
  const auto env = env_of(port, first);
  REQUIRE(env);
  CHECK((*env)["env"]["WATCHDOG_USEC"] == "1000000");
  CHECK((*env)["env"]["WATCHDOG_PID"] == std::to_string(first));
  // The socket of this worker run alone (slot 0, its first run): see test_notify_attribution.
  CHECK((*env)["env"]["NOTIFY_SOCKET"] == "@preforkd/" + std::to_string(d.pid()) + "/notify/0.0");

  const std::string timeout_line = "worker 0 (pid " + std::to_string(first) + "): watchdog timeout";
  REQUIRE(d.wait_log(timeout_line));
  const auto timed_out_at = Clock::now();
  // Not before the period: the worker started after `started`.
  CHECK(ms_between(started, timed_out_at) >= 1000);

  pid_t second = -1;
  REQUIRE(wait_until([&] {
    second = worker_pid(d.pid(), 0);
    return second > 0 && second != first;
  }));
  CHECK(wait_until([&] { return !process_alive(first); }));
  const auto env2 = env_of(port, second);
  REQUIRE(env2);
  CHECK((*env2)["env"]["WATCHDOG_PID"] == std::to_string(second));
  CHECK((*env2)["env"]["WATCHDOG_USEC"] == "1000000");

  const auto status = status_json(d);
  REQUIRE(status);
  INFO(status->dump());
  CHECK((*status)["workers"][0]["restarts"].get<int>() >= 1);

  // The replacement is silent too, so it goes the same way.
  CHECK(d.wait_log("worker 0 (pid " + std::to_string(second) + "): watchdog timeout"));

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("workers that send WATCHDOG=1 are not replaced", "[systemd]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2, .worker = "watchdog = \"1s\"\n"}));
  const auto workers = distinct_workers(port, 2);
  REQUIRE(workers.size() == 2);
  for (const auto& w : workers) {
    const auto env = env_of(port, w.pid);
    REQUIRE(env);
    CHECK((*env)["env"]["WATCHDOG_USEC"] == "1000000");
    CHECK((*env)["env"]["WATCHDOG_PID"] == std::to_string(w.pid));
  }

  // Three whole periods: a worker whose pings were not counted would be gone by then.
  std::this_thread::sleep_for(3s);  // checking that something does NOT happen over a window
  for (const auto& w : workers) {
    CHECK(process_alive(w.pid));
    CHECK(worker_pid(d.pid(), w.slot) == w.pid);
  }
  CHECK(d.count_log("watchdog timeout") == 0);

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}
