// The master's process_* figures: /proc/self/stat and /proc/stat parsed as the client
// libraries' process collector reads them.

#include <preforkd/os/process_metrics.hpp>

#include <catch2/catch.hpp>

#include <chrono>

using namespace preforkd;

TEST_CASE("process metrics: the fields of /proc/pid/stat after a name with spaces and parentheses",
          "[process_metrics]") {
  // utime 14, stime 15, starttime 22, vsize 23, rss 24.
  const std::string stat =
      "4121 (pre (forkd) x) S 1 4121 4121 0 -1 4194560 1200 0 0 0 250 130 0 0 20 0 1 0 987654 13750272 2133 "
      "18446744073709551615 1 1 0 0 0 0 0 4096 16386 0 0 0 17 1 0 0 0 0 0\n";
  const auto p = os::parse_process_stat(stat);
  REQUIRE(p);
  CHECK(p->cpu_ticks == 380);
  CHECK(p->start_ticks == 987654);
  CHECK(p->virtual_bytes == 13750272);
  CHECK(p->resident_pages == 2133);
  CHECK_FALSE(os::parse_process_stat("4121 (x) S 1 2"));
  CHECK_FALSE(os::parse_process_stat("no parenthesis"));
}

TEST_CASE("process metrics: the boot time is the btime line of /proc/stat", "[process_metrics]") {
  CHECK(os::parse_boot_time("cpu  1 2 3\nintr 5 6\nbtime 1796590000\nprocesses 77\n") == 1796590000);
  CHECK(os::parse_boot_time("btime 17\n") == 17);
  CHECK_FALSE(os::parse_boot_time("cpu 1\nxbtime 5\n"));
  CHECK_FALSE(os::parse_boot_time(""));
}

TEST_CASE("process metrics: this process's figures are there and plausible", "[process_metrics]") {
  const metrics::ProcessMetrics m = os::read_own_process_metrics();
  REQUIRE(m.cpu_seconds);
  REQUIRE(m.resident_memory_bytes);
  REQUIRE(m.virtual_memory_bytes);
  REQUIRE(m.open_fds);
  REQUIRE(m.max_fds);
  REQUIRE(m.start_time_seconds);
  CHECK(*m.cpu_seconds >= 0);
  CHECK(*m.resident_memory_bytes > 0);
  CHECK(*m.virtual_memory_bytes >= *m.resident_memory_bytes);
  CHECK(*m.open_fds >= 3);  // stdin, stdout, stderr
  CHECK(*m.max_fds >= *m.open_fds);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(*m.start_time_seconds <= now + 1);
  CHECK(*m.start_time_seconds > now - 24 * 3600);  // a test run is younger than a day
}
