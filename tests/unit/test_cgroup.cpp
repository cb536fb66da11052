// Worker cgroups: the parsers of /proc/self/mounts, /proc/<pid>/cgroup, cpu.stat,
// cgroup.events and the master's cgroup names.

#include <preforkd/os/cgroup.hpp>

#include <catch2/catch.hpp>

using namespace preforkd::os;

TEST_CASE("parse_cgroup2_mount finds the cgroup2 mount: hybrid or unified or none", "[cgroup]") {
  const std::string hybrid =
      "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
      "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
      "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
      "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n"
      "cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n";
  CHECK(parse_cgroup2_mount(hybrid) == "/sys/fs/cgroup/unified");
  CHECK(parse_cgroup2_mount("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n") ==
        "/sys/fs/cgroup");
  // The kernel escapes spaces in mount points as \040.
  CHECK(parse_cgroup2_mount("none /mnt/my\\040cgroups cgroup2 rw 0 0\n") == "/mnt/my cgroups");
  // "cgroup" (v1) is not cgroup2, and a cgroup2 *source* name does not count.
  CHECK_FALSE(parse_cgroup2_mount("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n").has_value());
  CHECK_FALSE(parse_cgroup2_mount("cgroup2 /x tmpfs rw 0 0\n").has_value());
  CHECK_FALSE(parse_cgroup2_mount("").has_value());
  CHECK_FALSE(parse_cgroup2_mount("garbage\n").has_value());
}

TEST_CASE("parse_cgroup2_path reads the 0:: line of /proc/<pid>/cgroup", "[cgroup]") {
  CHECK(parse_cgroup2_path("0::/system.slice/preforkd.service\n") == "/system.slice/preforkd.service");
  CHECK(parse_cgroup2_path("9:name=systemd:/\n4:memory:/a/b\n1:cpu:/\n0::/\n") == "/");
  CHECK(parse_cgroup2_path("4:memory:/a\n0::/user.slice/x.scope") == "/user.slice/x.scope");
  CHECK_FALSE(parse_cgroup2_path("4:memory:/a\n1:cpu:/\n").has_value());  // v1 only
  CHECK_FALSE(parse_cgroup2_path("0::/gone (deleted)\n").has_value());
  CHECK_FALSE(parse_cgroup2_path("").has_value());
}

TEST_CASE("parse_cpu_stat_usage_usec and parse_cgroup_populated and parse_master_cgroup_name", "[cgroup]") {
  CHECK(parse_cpu_stat_usage_usec("usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n") == 123456u);
  CHECK(parse_cpu_stat_usage_usec("nr_periods 0\nusage_usec 7\n") == 7u);
  CHECK_FALSE(parse_cpu_stat_usage_usec("user_usec 1\n").has_value());
  CHECK(parse_cgroup_populated("populated 1\nfrozen 0\n"));
  CHECK_FALSE(parse_cgroup_populated("populated 0\nfrozen 0\n"));
  CHECK_FALSE(parse_cgroup_populated(""));
  CHECK(parse_master_cgroup_name("preforkd-4121") == 4121);
  CHECK_FALSE(parse_master_cgroup_name("preforkd-").has_value());
  CHECK_FALSE(parse_master_cgroup_name("preforkd-12x").has_value());
  CHECK_FALSE(parse_master_cgroup_name("slot-0.1").has_value());
  CHECK_FALSE(parse_master_cgroup_name("preforkd--1").has_value());
}
