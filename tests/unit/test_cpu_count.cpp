// usable_cpus(): the affinity mask capped by a cgroup v2 cpu.max quota.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <optional>
#include <preforkd/core/cpu_count.hpp>
#include <preforkd/os/cpu.hpp>
#include <string>
#include <tuple>
#include <vector>

using preforkd::usable_cpus;

TEST_CASE("no cgroup quota: the affinity mask decides", "[cpu_count]") {
  CHECK(usable_cpus(8, std::nullopt) == 8);
  CHECK(usable_cpus(1, std::nullopt) == 1);
  CHECK(usable_cpus(8, "max 100000") == 8);
  CHECK(usable_cpus(8, "max 100000\n") == 8);
}

TEST_CASE("a quota is rounded up and capped by the affinity mask", "[cpu_count]") {
  const std::vector<std::tuple<int, std::string, int>> cases{
      {8, "150000 100000", 2},    // 1.5 CPUs -> 2
      {8, "150000 100000\n", 2},  // as read from the file
      {8, "100000 100000", 1},    // exactly one
      {8, "200000 100000", 2},    // exactly two
      {8, "200001 100000", 3},    // just over two
      {8, "50000 100000", 1},     // half a CPU still runs one worker
      {8, "1000 100000", 1},      // a tiny quota never gives zero
      {2, "400000 100000", 2},    // quota above the mask: the mask wins
      {4, "1600000 100000", 4},  {64, "3200000 100000", 32}, {8, "300000 50000", 6},  // another period
  };
  for (const auto& [affinity, cpu_max, expected] : cases) {
    INFO(affinity << " CPUs, cpu.max " << cpu_max);
    CHECK(usable_cpus(affinity, cpu_max) == expected);
  }
}

TEST_CASE("malformed cpu.max text falls back to the affinity mask", "[cpu_count]") {
  for (const std::string cpu_max : {"", "\n", "max", "150000", "150000 ", "abc 100000", "150000 abc", "150000 0",
                                    "0 100000", "-1 100000", "150000 100000 7", "1.5 1", "150000\t100000"}) {
    INFO('"' << cpu_max << '"');
    CHECK(usable_cpus(4, cpu_max) == 4);
  }
}

TEST_CASE("the result is at least one", "[cpu_count]") {
  CHECK(usable_cpus(0, std::nullopt) == 1);
  CHECK(usable_cpus(-3, std::nullopt) == 1);
  CHECK(usable_cpus(0, "150000 100000") == 1);
}

TEST_CASE("this process has at least one usable CPU", "[cpu_count]") {
  const int cpus = preforkd::os::read_usable_cpus();
  CHECK(cpus >= 1);
  CHECK(cpus <= sysconf(_SC_NPROCESSORS_CONF));
}
