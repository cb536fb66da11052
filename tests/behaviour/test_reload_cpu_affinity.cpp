// worker.cpu_affinity in a reload: a change replaces the workers, and the new ones run on
// the new CPUs (/proc/<pid>/status Cpus_allowed_list), as status says.

#include <sched.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "../support/skip.hpp"
#include "control_helpers.hpp"

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

}  // namespace

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
