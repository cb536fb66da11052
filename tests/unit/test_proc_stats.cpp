// /proc readers: RSS, CPU ticks, groups, and peer credentials of a socket pair.

#include <preforkd/os/proc_stats.hpp>

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>
#include <vector>

using namespace preforkd::os;
using namespace std::chrono_literals;

TEST_CASE("parse_stat_cpu_ticks reads utime + stime past any command name", "[proc_stats]") {
  const std::string tail = " S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 1000 200";
  CHECK(parse_stat_cpu_ticks("42 (app)" + tail) == 300u);
  // A name with spaces and parentheses: only the last ')' ends it.
  CHECK(parse_stat_cpu_ticks("42 (my app) (x) y)" + tail) == 300u);
  CHECK_FALSE(parse_stat_cpu_ticks("42 app S 1").has_value());
  CHECK_FALSE(parse_stat_cpu_ticks("42 (app) S 1 1").has_value());
}

TEST_CASE("parse_statm_resident_pages and parse_status_groups", "[proc_stats]") {
  CHECK(parse_statm_resident_pages("2000 350 100 10 0 500 0\n") == 350u);
  CHECK_FALSE(parse_statm_resident_pages("2000").has_value());
  CHECK(parse_status_groups("Name:\tx\nGroups:\t4 24 27 \nNSpid:\t1\n") == std::vector<gid_t>{4, 24, 27});
  CHECK(parse_status_groups("Name:\tx\nGroups:\t\nNSpid:\t1\n") == std::vector<gid_t>{});
  CHECK_FALSE(parse_status_groups("Name:\tx\n").has_value());
}

TEST_CASE("this process's RSS and CPU time and groups", "[proc_stats]") {
  auto rss = read_rss_bytes(::getpid());
  REQUIRE(rss.ok());
  CHECK(*rss > 100'000u);
  auto ticks = read_cpu_ticks(::getpid());
  REQUIRE(ticks.ok());
  CHECK(ticks_per_second() > 0);
  CHECK(read_supplementary_groups(::getpid()).ok());
  auto gone = read_rss_bytes(-5);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error() == "failed to open '/proc/-5/statm': no such file or directory");
}

TEST_CASE("cpu_percent is relative to one CPU and never negative", "[proc_stats]") {
  CHECK(cpu_percent(100, 150, 100, 1s) == Approx(50.0));
  CHECK(cpu_percent(100, 500, 100, 2s) == Approx(200.0));
  CHECK(cpu_percent(500, 100, 100, 1s) == 0.0);  // a new process in the slot
  CHECK(cpu_percent(0, 10, 100, 0s) == 0.0);
}

TEST_CASE("read_peer_credentials names the other end of a socket", "[proc_stats]") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  auto peer = read_peer_credentials(fds[0]);
  REQUIRE(peer.ok());
  CHECK(peer->pid == ::getpid());
  CHECK(peer->uid == ::geteuid());
  CHECK(peer->gid == ::getegid());
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK_FALSE(read_peer_credentials(-1).ok());
}
