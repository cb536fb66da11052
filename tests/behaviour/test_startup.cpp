// Start-up: N distinct workers answer on one port, each with its own socket and the contract's environment.

#include "harness.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <set>

using namespace bt;

namespace {

std::string demo_config(int port, int count, const std::string& extra_worker = "") {
  return "[worker]\ncommand = [\"" + demo_bin() + "\"]\ncount = " + std::to_string(count) +
         "\nready = \"immediate\"\nstop_timeout = \"10s\"\n" + extra_worker +
         "\n[[listen]]\nname = \"http\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\n";
}

}  // namespace

TEST_CASE("N distinct workers answer on one port") {
  const int port = free_port();
  Daemon d(demo_config(port, 3));
  auto workers = distinct_workers(port, 3);
  REQUIRE(workers.size() == 3);
  std::set<pid_t> pids;
  for (const auto& w : workers) pids.insert(w.pid);
  CHECK(pids.size() == 3);
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(processes_of_master(d.pid()).empty());
}

TEST_CASE("each worker holds exactly its own listening socket at fd 3 and the contract's variables") {
  const int port = free_port();
  Daemon d(demo_config(port, 2, "env = { APP_ENV = \"test\" }"));
  REQUIRE(distinct_workers(port, 2).size() == 2);
  std::set<unsigned long> inodes;
  for (int slot = 0; slot < 2; ++slot) {
    nlohmann::json env;
    REQUIRE(wait_until([&] {
      auto r = http_get(port, "/env");
      if (!r) return false;
      env = nlohmann::json::parse(r->body);
      return env["slot"] == std::to_string(slot);
    }));
    INFO(env.dump());
    const auto& vars = env["env"];
    CHECK(vars["LISTEN_FDS"] == "1");
    CHECK(vars["LISTEN_PID"] == std::to_string(env["pid"].get<int>()));
    CHECK(vars["LISTEN_FDNAMES"] == "http");
    CHECK(vars["PREFORK_CHILD"] == "1");
    CHECK(vars["PREFORK_WORKER_ID"] == std::to_string(slot));
    CHECK(vars["PREFORK_WORKERS"] == "2");
    CHECK(vars["PREFORK_MASTER_PID"] == std::to_string(d.pid()));
    CHECK(vars["PREFORK_GENERATION"] == "0");
    CHECK(vars["APP_ENV"] == "test");
    CHECK_FALSE(vars.contains("NOTIFY_SOCKET"));
    CHECK(env["ppid"] == d.pid());
    CHECK(env["stdin_is_devnull"] == true);
    CHECK(env["sigmask_empty"] == true);
    CHECK(env["ignored_signals"].empty());
    REQUIRE(env["fds"].size() == 1);
    CHECK(env["fds"][0]["fd"] == 3);
    CHECK(env["fds"][0]["local"] == "127.0.0.1:" + std::to_string(port));
    inodes.insert(env["fds"][0]["inode"].get<unsigned long>());
  }
  CHECK(inodes.size() == 2);  // reuseport: one socket per slot
}
