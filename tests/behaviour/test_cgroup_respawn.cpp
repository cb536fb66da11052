// Worker cgroups and respawn: a worker killed with SIGKILL is replaced in a cgroup made
// ahead (clone3(CLONE_INTO_CGROUP); how fast is a benchmark's question, `preforkd_bench
// respawn`, never a timed assertion here), and the dead worker's whole tree is still killed, in its own
// cgroup, although the replacement already runs. No cgroup is left behind: each slot has
// its current cgroup and one spare, and a slot scaled away takes both.
//
// These need root and a writable cgroup2 mount: where preforkd can make worker cgroups
// (root with a cgroup2 mount), a test that cannot use them fails.

#include <catch2/catch.hpp>
#include <csignal>
#include <dirent.h>
#include <fstream>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>

#include "control_helpers.hpp"
#include "tree_helpers.hpp"

using namespace bt;

namespace {

// Fails the test where worker cgroups should work: as root, with a cgroup2 mount.
void require_cgroups() {
  const std::string why = cgroups_unavailable();
  INFO("worker cgroups cannot be tested here: " << why);
  REQUIRE(why.empty());
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The names of the subdirectories of `dir` that start with `prefix`.
std::vector<std::string> subdirs(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d))
    if (e->d_type == DT_DIR && std::string_view(e->d_name).starts_with(prefix)) out.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// The cgroup2 path of `pid` ("0::/a/b" in /proc/<pid>/cgroup), "" when unreadable.
std::string cgroup_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("0::")) return line.substr(3);
  return "";
}

// True when `pid` is in the cgroup whose directory is `dir` (mount point + cgroup path).
bool in_cgroup(pid_t pid, const std::string& dir) {
  const std::string path = cgroup_of(pid);
  return !path.empty() && dir.ends_with(path);
}

std::string cgroup_of_slot(const Daemon& d, int slot) {
  const auto s = status_of(d);
  if (!s) return "";
  for (const auto& w : (*s)["workers"])
    if (w.value("slot", -1) == slot) return w.value("cgroup", std::string());
  return "";
}

// A tree_worker in `slot` whose pid is not `old`, and its children.
std::optional<TreeHello> tree_hello_other_than(int port, pid_t old) {
  std::optional<TreeHello> h;
  wait_until([&] {
    h = tree_hello(port, 5s);
    return h && h->pid != old;
  });
  if (h && h->pid == old) return std::nullopt;
  return h;
}

}  // namespace

TEST_CASE("worker cgroups: after a crash the old tree is killed while the replacement runs") {
  require_cgroups();
  const int port = free_port();
  Daemon d(tree_config(port, "TREE_SETSID_CHILD = \"1\"", "on"));
  INFO(d.log());
  auto first = tree_hello(port);
  REQUIRE(first);
  REQUIRE(first->children.size() == 1);
  const std::string old_cgroup = cgroup_of_slot(d, 0);
  REQUIRE(!old_cgroup.empty());
  CHECK(in_cgroup(first->pid, old_cgroup));
  CHECK(in_cgroup(first->children[0], old_cgroup));

  for (int kill = 1; kill <= 3; ++kill) {
    INFO("kill " << kill);
    const pid_t hidden = first->children[0];
    const std::string before = cgroup_of_slot(d, 0);
    REQUIRE(::kill(first->pid, SIGKILL) == 0);
    auto next = tree_hello_other_than(port, first->pid);
    REQUIRE(next);
    REQUIRE(next->children.size() == 1);
    // The setsid() child of the dead worker goes, although its replacement already runs.
    CHECK(wait_until([&] { return !process_alive(hidden); }));
    CHECK(wait_until([&] { return !exists(before); }));
    // The replacement and its own child are in a new cgroup, which status names.
    std::string now;
    CHECK(wait_until([&] {
      now = cgroup_of_slot(d, 0);
      return !now.empty() && now != before;
    }));
    CHECK(exists(now));
    CHECK(in_cgroup(next->pid, now));
    CHECK(in_cgroup(next->children[0], now));
    CHECK(process_alive(next->children[0]));
    first = next;
  }
  // Nothing piles up: the slot's cgroup and its spare, made ahead for the next start.
  const std::string base = old_cgroup.substr(0, old_cgroup.rfind('/'));
  std::vector<std::string> left;
  CHECK(wait_until([&] {
    left = subdirs(base, "slot-");
    return left.size() == 2;
  }));
  INFO("left: " << left.size());
  CHECK(left.size() == 2);
  stop_cleanly(d);
  CHECK(!exists(base));
}

TEST_CASE("worker cgroups: a slot scaled away leaves no cgroup behind") {
  require_cgroups();
  const int port = free_port();
  Daemon d(tree_config(port, "", "on", 2));
  INFO(d.log());
  const auto status = wait_workers_ready(d, 2);
  REQUIRE(status);
  const std::string some = cgroup_of_slot(d, 0);
  REQUIRE(!some.empty());
  const std::string base = some.substr(0, some.rfind('/'));
  // Each slot: the cgroup its worker runs in, and the spare for its next start.
  CHECK(wait_until([&] { return subdirs(base, "slot-1.").size() == 2; }));
  REQUIRE(ctl(d, {"scale", "1"}).exit_code == 0);
  CHECK(wait_until([&] { return subdirs(base, "slot-1.").empty(); }));
  CHECK(subdirs(base, "slot-0.").size() == 2);
  // Back to 2: the new slot 1 starts in a cgroup of its own again.
  REQUIRE(ctl(d, {"scale", "2"}).exit_code == 0);
  REQUIRE(wait_workers_ready(d, 2));
  CHECK(wait_until([&] { return !cgroup_of_slot(d, 1).empty(); }));
  stop_cleanly(d);
  CHECK(!exists(base));
}
