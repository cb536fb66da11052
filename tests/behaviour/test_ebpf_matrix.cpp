// The kernel balancer (balance = "load" with the eBPF program) survives every operation:
// after each one, status still says `balanced_by = "ebpf"` with no `ebpf_error`, and a run
// of fresh connections while the workers wait in a blocking accept() is counted by the
// program as sent to a waiting worker (`steered.waiting`). One test case per operation.
//
// These need root and eBPF (a kernel with BTF), as CI has: where the program cannot load
// they fail and say why, they never skip. The workers are tests/fixtures/sync_worker,
// which clears O_NONBLOCK on its socket itself and then blocks in accept(): the program
// sees a worker waiting only while a thread sleeps on its socket.

#include <preforkd/os/reuseport_ebpf.hpp>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "control_helpers.hpp"
#include "harness.hpp"

using namespace bt;
using nlohmann::json;

namespace {

// Fresh connections per check, one after another.
constexpr int kRequests = 20;

// Fails the test case where the eBPF program cannot load.
void require_kernel_balancer() {
  if (auto why = preforkd::os::reuseport_steering_unavailable())
    FAIL("the eBPF balancer cannot load here, and these tests need it (root and a kernel with BTF, as CI has): "
         << *why);
}

struct Options {
  int count = 3;
  std::string worker{};  // more [worker] lines
  std::string listen{};  // more [[listen]] lines
  std::string ready = "immediate";
  std::vector<std::string> command{};  // sync_worker when empty
};

// preforkd.ebpf = "on": a program that cannot load stops the start instead of falling back.
std::string config(int port, const Options& o) {
  std::vector<std::string> command = o.command.empty() ? std::vector<std::string>{fixture("sync_worker")} : o.command;
  return toml({.address = local_address(port),
               .count = o.count,
               .ready = o.ready,
               .worker = "backoff_initial = \"100ms\"\nbackoff_max = \"1s\"\n" + o.worker,
               .preforkd = "ebpf = \"on\"\nlog_level = \"debug\"\n",
               .command = command}) +
         o.listen;
}

// sync_worker behind a shell that exits at once while <dir>/crash-<slot> or <dir>/crash-all
// exists, so that a test makes a slot (or all of them) crash and come back.
std::vector<std::string> crashable(const TempDir& dir) {
  const std::string d = dir.path();
  return {"/bin/sh", "-c",
          "if [ -e '" + d + "/crash-all' ] || [ -e \"" + d + "/crash-$PREFORK_WORKER_ID\" ]; then exit 1; fi; exec '" +
              fixture("sync_worker") + "'"};
}

json listener_of(const json& status) {
  return status["listeners"][0];
}

std::uint64_t steered(const json& listener, const char* outcome) {
  if (!listener.contains("steered")) return 0;
  return listener["steered"].value(outcome, std::uint64_t{0});
}

// The slots that have a ready worker, with its pid.
std::map<int, pid_t> ready_workers(const json& status) {
  std::map<int, pid_t> out;
  for (const auto& w : status["workers"])
    if (w.value("state", "") == "ready" && w.value("pid", -1) > 0) out[w["slot"].get<int>()] = w["pid"].get<pid_t>();
  return out;
}

// After `operation`: `ready` workers are ready and each waits in accept(); the listener is
// balanced by the kernel program, with no error; `kRequests` fresh connections, one after
// another, are all answered and counted by the program, as sent to a waiting worker.
void check_kernel_balances(const Daemon& d, int port, int ready, const std::string& operation) {
  INFO("after: " << operation);
  std::optional<json> status;
  const bool settled = wait_until(
      [&] {
        status = status_of(d);
        if (!status) return false;
        int waiting = 0;
        for (const auto& w : (*status)["workers"])
          waiting += w.value("state", "") == "ready" && w.value("activity", "") == "waiting" ? 1 : 0;
        return waiting == ready && static_cast<int>(ready_workers(*status).size()) == ready;
      },
      60s);
  INFO("status: " << (status ? status->dump() : "none"));
  INFO("log: " << d.log());
  REQUIRE(settled);
  const json before = listener_of(*status);
  CHECK(before.value("balanced_by", "") == "ebpf");
  CHECK(before.value("ebpf_error", "?") == "");
  REQUIRE(before.contains("steered"));

  int answered = 0;
  for (int i = 0; i < kRequests; ++i) {
    const auto r = http_get(port, "/?ms=1", 10s);
    answered += r && r->status == 200 ? 1 : 0;
  }
  CHECK(answered == kRequests);

  const auto after_status = status_of(d);
  REQUIRE(after_status);
  const json after = listener_of(*after_status);
  INFO("listener before: " << before.dump() << "\nlistener after: " << after.dump());
  CHECK(after.value("balanced_by", "") == "ebpf");
  CHECK(after.value("ebpf_error", "?") == "");
  // Every connection placed by the program (none left to the hash: a slot was live), and
  // to a waiting worker: after each answer the other workers still wait in accept().
  const std::uint64_t waiting = steered(after, "waiting") - steered(before, "waiting");
  const std::uint64_t busy = steered(after, "busy") - steered(before, "busy");
  CHECK(waiting + busy == static_cast<std::uint64_t>(kRequests));
  CHECK(waiting >= static_cast<std::uint64_t>(kRequests) - 2);
  // Never a word of a fallback or a steering failure.
  CHECK(d.count_log("eBPF balancer failed") == 0);
  CHECK(d.count_log("cannot steer connections") == 0);
  CHECK(d.count_log("cannot balance in the kernel") == 0);
}

void scale(const Daemon& d, const std::string& by) {
  const auto r = ctl(d, {"scale", by});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
}

void reload(const Daemon& d) {
  const auto r = ctl(d, {"reload"});
  INFO(r.out << r.err << "\nlog: " << d.log());
  REQUIRE(r.exit_code == 0);
}

}  // namespace

TEST_CASE("kernel balancer: scale down") {
  require_kernel_balancer();
  const int port = free_port();
  Daemon d(config(port, {.count = 4}));
  check_kernel_balances(d, port, 4, "start");
  scale(d, "-1");
  check_kernel_balances(d, port, 3, "scale -1");
  scale(d, "-1");
  check_kernel_balances(d, port, 2, "scale -1 again");
  stop_cleanly(d);
}

TEST_CASE("kernel balancer: scale up") {
  require_kernel_balancer();
  const int port = free_port();
  Daemon d(config(port, {.count = 2}));
  check_kernel_balances(d, port, 2, "start");
  scale(d, "+2");
  check_kernel_balances(d, port, 4, "scale +2");
  // Down and up again: the slots that were removed come back.
  scale(d, "-2");
  check_kernel_balances(d, port, 2, "scale -2");
  scale(d, "+1");
  check_kernel_balances(d, port, 3, "scale +1");
  stop_cleanly(d);
}

TEST_CASE("kernel balancer: reload with the listener unchanged") {
  require_kernel_balancer();
  const int port = free_port();
  Daemon d(config(port, {}));
  check_kernel_balances(d, port, 3, "start");
  // Nothing changed: no worker moves.
  reload(d);
  check_kernel_balances(d, port, 3, "a reload with nothing changed");
  // A worker setting changed: every worker is replaced, the sockets stay.
  rewrite_config(d, config(port, {.worker = "env = { MATRIX = \"1\" }\n"}));
  reload(d);
  check_kernel_balances(d, port, 3, "a reload that replaces the workers");
  stop_cleanly(d);
}

TEST_CASE("kernel balancer: reload with the listener changed") {
  require_kernel_balancer();
  const int port = free_port();
  Daemon d(config(port, {}));
  check_kernel_balances(d, port, 3, "start");
  // The same sockets with another backlog: a new listener set over the same group.
  rewrite_config(d, config(port, {.listen = "backlog = 64\n"}));
  reload(d);
  check_kernel_balances(d, port, 3, "a reload that changes the backlog");
  // Another port: a new group, bound by the reload.
  const int moved = free_port();
  rewrite_config(d, config(moved, {.listen = "backlog = 64\n"}));
  reload(d);
  check_kernel_balances(d, moved, 3, "a reload that moves the listener to another port");
  stop_cleanly(d);
}

TEST_CASE("kernel balancer: rolling restart") {
  require_kernel_balancer();
  const int port = free_port();
  Daemon d(config(port, {}));
  check_kernel_balances(d, port, 3, "start");
  const auto r = ctl(d, {"restart"});
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  check_kernel_balances(d, port, 3, "preforkctl restart");
  const auto one = ctl(d, {"restart", "1"});
  INFO(one.out << one.err);
  REQUIRE(one.exit_code == 0);
  check_kernel_balances(d, port, 3, "preforkctl restart 1");
  stop_cleanly(d);
}

TEST_CASE("kernel balancer: recycle at max_lifetime") {
  require_kernel_balancer();
  const int port = free_port();
  Daemon d(config(port, {.count = 2, .worker = "max_lifetime = \"2s\"\n"}));
  check_kernel_balances(d, port, 2, "start");
  // Both slots recycled at least once (each recycle replaces one worker, ready first).
  REQUIRE(wait_until([&] { return d.count_log("recycle done") >= 2; }, 60s));
  // Recycling goes on; the check waits until both workers wait in accept() again.
  check_kernel_balances(d, port, 2, "max_lifetime recycles");
  stop_cleanly(d);
}

TEST_CASE("kernel balancer: recycle above max_memory") {
  require_kernel_balancer();
  const int port = free_port();
  Daemon d(config(port, {.count = 2, .worker = "max_memory = \"64MiB\"\nmemory_sample_interval = \"250ms\"\n"}));
  check_kernel_balances(d, port, 2, "start");
  const auto grown = http_get(port, "/?mb=100", 20s);
  REQUIRE(grown);
  REQUIRE(grown->status == 200);
  REQUIRE(d.wait_log("recycle done", 60s));
  check_kernel_balances(d, port, 2, "a max_memory recycle");
  stop_cleanly(d);
}

TEST_CASE("kernel balancer: upgrade in place") {
  require_kernel_balancer();
  const int port = free_port();
  Daemon d(config(port, {}));
  check_kernel_balances(d, port, 3, "start");
  const auto r = ctl(d, {"upgrade"});
  INFO(r.out << r.err << "\nlog: " << d.log());
  REQUIRE(r.exit_code == 0);
  REQUIRE(d.wait_log("upgraded from"));
  // The new image loads a program of its own: its counts start again from 0.
  check_kernel_balances(d, port, 3, "preforkctl upgrade");
  stop_cleanly(d);
}

TEST_CASE("kernel balancer: a slot crashing and backing off") {
  require_kernel_balancer();
  const int port = free_port();
  TempDir files;
  Daemon d(config(port, {.ready = "500ms", .command = crashable(files)}));
  check_kernel_balances(d, port, 3, "start");
  // Slot 1 crashes from now on: killed, it comes back, exits at once, and backs off.
  files.write("crash-1", "crash\n");
  const pid_t victim = worker_pid(d.pid(), 1);
  REQUIRE(victim > 0);
  REQUIRE(::kill(victim, SIGKILL) == 0);
  REQUIRE(wait_until([&] { return d.count_log("worker 1: restarting in") >= 3; }, 60s));
  check_kernel_balances(d, port, 2, "slot 1 crashing and backing off");
  // It stops crashing and is ready again.
  REQUIRE(std::remove(files.file("crash-1").c_str()) == 0);
  check_kernel_balances(d, port, 3, "slot 1 back from its backoff");
  stop_cleanly(d);
}

TEST_CASE("kernel balancer: fail fast while no worker is ready") {
  require_kernel_balancer();
  const int port = free_port();
  TempDir files;
  Daemon d(config(port,
                  {.count = 2, .listen = "fail_fast_after = \"1s\"\n", .ready = "500ms", .command = crashable(files)}));
  check_kernel_balances(d, port, 2, "start");
  // Every worker crashes: after 1 s with none ready the master refuses connections.
  files.write("crash-all", "crash\n");
  for (int slot = 0; slot < 2; ++slot) {
    const pid_t pid = worker_pid(d.pid(), slot);
    REQUIRE(pid > 0);
    REQUIRE(::kill(pid, SIGKILL) == 0);
  }
  REQUIRE(d.wait_log("refusing connections until one is", 60s));
  const auto refusing = status_of(d);
  REQUIRE(refusing);
  INFO(refusing->dump());
  CHECK(listener_of(*refusing).value("refusing", false));
  CHECK(listener_of(*refusing).value("balanced_by", "") == "ebpf");
  // The workers come back: refusing ends and the program balances again.
  REQUIRE(std::remove(files.file("crash-all").c_str()) == 0);
  REQUIRE(d.wait_log("no longer refusing connections", 60s));
  check_kernel_balances(d, port, 2, "fail fast, then workers ready again");
  stop_cleanly(d);
}
