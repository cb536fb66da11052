// A worker is its whole tree: what a worker forks, even a child that calls setsid() and
// ignores SIGTERM, goes when the worker goes (with a worker cgroup: cgroup.kill; without:
// the descendants seen from /proc); its CPU counts in status; and after a kill -9 of the
// master, the next preforkd kills what was left in the dead master's cgroups.

#include <catch2/catch.hpp>
#include <csignal>
#include <sys/stat.h>

#include "control_helpers.hpp"
#include "tree_helpers.hpp"
#include "../support/skip.hpp"

using namespace bt;

namespace {

// The status entry of slot 0, once it has a pid.
std::optional<nlohmann::json> slot0(const Daemon& d) {
  auto s = status_of(d);
  if (!s || (*s)["workers"].empty()) return std::nullopt;
  return (*s)["workers"][0];
}

// A setsid()'d, SIGTERM-ignoring child of the worker in slot 0 is gone once a rolling
// restart has replaced that worker, while the master keeps running; then a stop leaves
// nothing behind.
void check_restart_takes_the_tree(const std::string& worker_cgroups) {
  const int port = free_port();
  Daemon d(tree_config(port, "TREE_SETSID_CHILD = \"1\"", worker_cgroups));
  auto first = tree_hello(port);
  REQUIRE(first);
  REQUIRE(first->children.size() == 1);
  const pid_t hidden = first->children[0];
  REQUIRE(process_alive(hidden));
  // The sampler has seen the tree (two processes) before the restart.
  CHECK(wait_until([&] {
    auto w = slot0(d);
    return w && w->value("processes", 0) == 2;
  }));

  const CtlResult r = ctl(d, {"restart", "0"});
  REQUIRE(r.exit_code == 0);
  INFO(d.log());
  CHECK(wait_until([&] { return !process_alive(first->pid); }));
  CHECK(wait_until([&] { return !process_alive(hidden); }));
  CHECK(d.running());
  auto second = tree_hello(port);
  REQUIRE(second);
  CHECK(second->pid != first->pid);
  stop_cleanly(d);
  CHECK(!process_alive(second->children.at(0)));
}

}  // namespace

TEST_CASE("worker tree: a setsid child goes with its worker - in a worker cgroup") {
  if (const std::string why = cgroups_unavailable(); !why.empty()) {
    SKIP_OR_FAIL("worker cgroups need root and a writable cgroup2 mount: " << why);
  }
  check_restart_takes_the_tree("on");
}

TEST_CASE("worker tree: a setsid child goes with its worker - without cgroups") {
  check_restart_takes_the_tree("off");
}

TEST_CASE("worker tree: each worker has its own cgroup - removed when it is gone") {
  if (const std::string why = cgroups_unavailable(); !why.empty()) {
    SKIP_OR_FAIL("worker cgroups need root and a writable cgroup2 mount: " << why);
  }
  const int port = free_port();
  Daemon d(tree_config(port, "TREE_SETSID_CHILD = \"1\"", "auto", 2));
  auto status = wait_workers_ready(d, 2);
  REQUIRE(status);
  std::vector<std::string> cgroups;
  for (const auto& w : (*status)["workers"]) cgroups.push_back(w.value("cgroup", std::string()));
  REQUIRE(cgroups.size() == 2);
  for (const auto& c : cgroups) {
    INFO(c);
    REQUIRE(!c.empty());
    struct stat st {};
    CHECK(::stat(c.c_str(), &st) == 0);
  }
  CHECK(cgroups[0] != cgroups[1]);
  const std::string base = cgroups[0].substr(0, cgroups[0].rfind('/'));
  CHECK(base.ends_with("/preforkd-" + std::to_string(d.pid())));
  stop_cleanly(d);
  struct stat st {};
  CHECK(::stat(base.c_str(), &st) != 0);  // removed, with the workers' cgroups
}

TEST_CASE("worker tree: after kill -9 of the master - the next preforkd kills what was left") {
  if (const std::string why = cgroups_unavailable(); !why.empty()) {
    SKIP_OR_FAIL("worker cgroups need root and a writable cgroup2 mount: " << why);
  }
  const int port = free_port();
  Daemon first(tree_config(port, "TREE_SETSID_CHILD = \"1\"", "on"));
  auto h = tree_hello(port);
  REQUIRE(h);
  REQUIRE(h->children.size() == 1);
  const pid_t hidden = h->children[0];
  first.signal(SIGKILL);
  REQUIRE(first.wait_exit() == 128 + SIGKILL);
  // The worker dies with its master (parent-death signal); its setsid'd child does not.
  CHECK(wait_until([&] { return !process_alive(h->pid); }));
  REQUIRE(process_alive(hidden));

  const int port2 = free_port();
  Daemon second(tree_config(port2, "", "on"));
  INFO(second.log());
  CHECK(wait_until([&] { return !process_alive(hidden); }));
  CHECK(second.wait_log("killed 1 process left in"));
  CHECK(second.wait_log("by preforkd (pid " + std::to_string(first.pid()) + "), which is gone"));
  stop_cleanly(second);
}

TEST_CASE("worker tree: status shows the CPU of a worker's busy children") {
  for (const std::string mode : {"auto", "off"}) {
    INFO("worker_cgroups = " << mode);
    const int port = free_port();
    // Two spinning children, so that the tree passes one CPU's half even on a busy machine.
    Daemon d(tree_config(port, "TREE_BUSY_CHILD = \"2\"", mode));
    REQUIRE(tree_hello(port));
    double seen = 0;
    // The worker itself sleeps in accept(): all of this is its child's.
    CHECK(wait_until([&] {
      auto w = slot0(d);
      seen = w ? w->value("cpu_percent", 0.0) : 0.0;
      return seen > 50.0;
    }, 90s));
    INFO("cpu_percent " << seen);
    auto w = slot0(d);
    REQUIRE(w);
    CHECK(w->value("processes", 0) == 3);
    stop_cleanly(d);
  }
}
