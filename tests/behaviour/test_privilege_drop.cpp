// worker.user and worker.group: a master running as root starts its workers as that user
// and group, with that group as their only group (setgroups, setgid, setuid), so every id
// in /proc/<worker>/status is the unprivileged one.

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/skip.hpp"
#include "control_helpers.hpp"

using namespace bt;

namespace {

// The numbers after `key` in /proc/<pid>/status, e.g. "Uid:" → real, effective, saved, fs.
std::vector<long> status_ids(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) != 0) continue;
    std::istringstream fields(line.substr(key.size()));
    std::vector<long> ids;
    for (long id = 0; fields >> id;) ids.push_back(id);
    return ids;
  }
  return {};
}

}  // namespace

TEST_CASE("worker user and group: every worker runs as nobody and nogroup only", "[privileges]") {
  if (::geteuid() != 0) SKIP_OR_FAIL("dropping privileges needs a master running as root");
  const passwd* nobody = ::getpwnam("nobody");
  const group* nogroup = ::getgrnam("nogroup");
  REQUIRE(nobody != nullptr);
  REQUIRE(nogroup != nullptr);
  const long uid = nobody->pw_uid, gid = nogroup->gr_gid;

  Daemon d(
      toml({.address = local_address(free_port()), .count = 2, .worker = "user = \"nobody\"\ngroup = \"nogroup\"\n"}));
  INFO(d.log());
  const auto s = wait_workers_ready(d, 2);
  REQUIRE(s);
  // The master keeps root; each worker has the user's and the group's ids, all four of each.
  CHECK(status_ids(d.pid(), "Uid:") == std::vector<long>{0, 0, 0, 0});
  for (const pid_t pid : pids_in(*s)) {
    INFO("worker " << pid);
    CHECK(status_ids(pid, "Uid:") == std::vector<long>{uid, uid, uid, uid});
    CHECK(status_ids(pid, "Gid:") == std::vector<long>{gid, gid, gid, gid});
    // No supplementary group is left from root (setgroups): at most the group itself.
    for (const long g : status_ids(pid, "Groups:")) CHECK(g == gid);
  }
  stop_cleanly(d);
}
