// worker.cpu_affinity: "auto" pins slot i to the i-th usable CPU, an explicit list pins
// slot i to list[i % n]; a replacement gets the same CPU; status shows it; a CPU outside
// the master's mask is a config error naming it.

#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <string>
#include <vector>

#include "control_helpers.hpp"
#include "../support/skip.hpp"

using namespace bt;

namespace {

std::vector<int> own_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

// Cpus_allowed_list of /proc/<pid>/status, e.g. "1" or "0-1".
std::string cpus_allowed(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Cpus_allowed_list:", 0) == 0) {
      const auto begin = line.find_first_not_of(" \t", sizeof("Cpus_allowed_list:") - 1);
      return begin == std::string::npos ? "" : line.substr(begin);
    }
  }
  return "";
}

std::string pinned(int count, const std::string& affinity) {
  return toml({.address = local_address(free_port()), .count = count, .worker = "cpu_affinity = " + affinity + "\n"});
}

// Each slot's worker runs on `expected[slot]` only, by /proc and by status --json.
void check_pinning(const Daemon& d, const std::vector<int>& expected, std::optional<int> generation = {}) {
  const auto s = wait_workers_ready(d, static_cast<int>(expected.size()), generation);
  REQUIRE(s);
  const auto pids = pids_in(*s);
  for (std::size_t slot = 0; slot < expected.size(); ++slot) {
    INFO("slot " << slot << ", pid " << pids[slot]);
    CHECK(cpus_allowed(pids[slot]) == std::to_string(expected[slot]));
    CHECK((*s)["workers"][slot].value("cpus", "") == std::to_string(expected[slot]));
  }
}

}  // namespace

TEST_CASE("cpu_affinity = auto pins each slot to its own CPU - also after a kill -9", "[affinity]") {
  const auto cpus = own_cpus();
  if (cpus.size() < 2) {
    SKIP_OR_FAIL("this process may run on " << cpus.size() << " CPU(s), the test needs 2");
  }
  Daemon d(pinned(2, "\"auto\""));
  INFO(d.log());
  check_pinning(d, {cpus[0], cpus[1]});
  const auto before = wait_workers_ready(d, 2);
  REQUIRE(before);
  const pid_t victim = pids_in(*before)[1];
  ::kill(victim, SIGKILL);
  REQUIRE(wait_until([&] {
    const auto s = status_of(d);
    return s && pids_in(*s)[1] != victim && pids_in(*s)[1] > 0 && (*s)["workers"][1].value("state", "") == "ready";
  }));
  check_pinning(d, {cpus[0], cpus[1]});
  stop_cleanly(d);
}

TEST_CASE("an explicit cpu_affinity list is used in slot order and wraps around - said once", "[affinity]") {
  const auto cpus = own_cpus();
  if (cpus.size() < 2) {
    SKIP_OR_FAIL("this process may run on " << cpus.size() << " CPU(s), the test needs 2");
  }
  const std::string list = std::string("[").append(std::to_string(cpus[1])).append(", ").append(std::to_string(cpus[0])).append("]");
  Daemon d(pinned(3, list));
  INFO(d.log());
  check_pinning(d, {cpus[1], cpus[0], cpus[1]});
  CHECK(d.count_log("3 workers on 2 CPUs") == 1);
  const CtlResult table = ctl(d, {"status"});
  CHECK(table.out.find("CPUS") != std::string::npos);
  stop_cleanly(d);
}

TEST_CASE("without cpu_affinity workers keep the master's CPUs and status shows no pinning", "[affinity]") {
  Daemon d(toml({.address = local_address(free_port()), .count = 2}));
  const auto s = wait_workers_ready(d, 2);
  REQUIRE(s);
  // The master runs where this test runs; each worker may run wherever the master may.
  const std::string master_cpus = cpus_allowed(d.pid());
  INFO("master " << d.pid() << " may run on " << master_cpus);
  REQUIRE(!master_cpus.empty());
  CHECK(master_cpus == cpus_allowed(::getpid()));
  for (const pid_t pid : pids_in(*s)) {
    INFO("worker " << pid);
    CHECK(cpus_allowed(pid) == master_cpus);
  }
  for (const auto& w : (*s)["workers"]) CHECK(w.value("cpus", "?").empty());
  stop_cleanly(d);
}

TEST_CASE("a cpu_affinity CPU outside the master's mask is a config error naming it", "[affinity]") {
  const auto cpus = own_cpus();
  int absent = 0;
  while (std::find(cpus.begin(), cpus.end(), absent) != cpus.end()) ++absent;
  for (const bool check : {true, false}) {
    Daemon d(pinned(2, std::string("[").append(std::to_string(absent)).append("]")), check ? std::vector<std::string>{"--check"}
                                                                  : std::vector<std::string>{});
    INFO(d.log());
    CHECK(d.wait_exit() == 78);
    CHECK(d.log().find("worker.cpu_affinity[0]: CPU " + std::to_string(absent) + " is not in this process's usable set") !=
          std::string::npos);
    CHECK(no_process_left(d.pid()));
  }
  Daemon bad(pinned(2, "\"all\""), {"--check"});
  CHECK(bad.wait_exit() == 78);
  CHECK(bad.log().find(R"(worker.cpu_affinity: must be "auto" or a list of CPU numbers such as [0, 2], got "all")") !=
        std::string::npos);
}

// A reload that changes cpu_affinity: a change replaces the workers, and the new ones run on
// the new CPUs, as status says.
TEST_CASE("a reload that changes cpu_affinity replaces the workers on the new CPUs", "[affinity][control]") {
  const auto cpus = own_cpus();
  if (cpus.size() < 2) SKIP_OR_FAIL("this process may run on " << cpus.size() << " CPU(s), the test needs 2");
  const std::string all = cpus_allowed(::getpid());
  DemoConfig c{.address = local_address(free_port()), .count = 2};
  Daemon d(toml(c));
  INFO(d.log());
  auto s = wait_workers_ready(d, 2, 0);
  REQUIRE(s);
  for (const pid_t pid : pids_in(*s)) CHECK(cpus_allowed(pid) == all);

  // None → auto: slot i on the i-th CPU.
  c.worker = "cpu_affinity = \"auto\"\n";
  rewrite_config(d, toml(c));
  REQUIRE(ctl(d, {"reload"}).exit_code == 0);
  s = wait_workers_ready(d, 2, 1);
  REQUIRE(s);
  auto pids = pids_in(*s);
  for (std::size_t slot = 0; slot < 2; ++slot) {
    INFO("slot " << slot);
    CHECK(cpus_allowed(pids[slot]) == std::to_string(cpus[slot]));
    CHECK((*s)["workers"][slot].value("cpus", "") == std::to_string(cpus[slot]));
  }

  // auto → a list of one CPU: both slots there.
  c.worker = "cpu_affinity = [" + std::to_string(cpus[1]) + "]\n";
  rewrite_config(d, toml(c));
  REQUIRE(ctl(d, {"reload"}).exit_code == 0);
  s = wait_workers_ready(d, 2, 2);
  REQUIRE(s);
  pids = pids_in(*s);
  for (std::size_t slot = 0; slot < 2; ++slot) {
    INFO("slot " << slot);
    CHECK(cpus_allowed(pids[slot]) == std::to_string(cpus[1]));
  }

  // Removed again: the workers may run on every CPU of the master.
  c.worker = "";
  rewrite_config(d, toml(c));
  REQUIRE(ctl(d, {"reload"}).exit_code == 0);
  s = wait_workers_ready(d, 2, 3);
  REQUIRE(s);
  for (const pid_t pid : pids_in(*s)) CHECK(cpus_allowed(pid) == all);
  stop_cleanly(d);
}
