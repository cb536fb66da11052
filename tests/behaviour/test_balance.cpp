// Balanced accept (balance = "load", the default for reuseport listeners): a new
// connection goes to a worker that waits for one, never behind a busy worker while
// another waits. Synchronous workers (tests/fixtures/sync_worker.cpp) handle one request
// at a time, so a connection hashed to a busy one waits for its whole request.

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>

#include "control_helpers.hpp"
#include "harness.hpp"

using namespace bt;

namespace {

// `ebpf`: preforkd.ebpf, "auto" (the kernel program: these tests run as root) or "off"
// (the master's sampler); the behaviour tests below run with both.
std::string sync_config(int port, int count, const std::string& listen_extra = "", const std::string& ebpf = "auto") {
  // trace: the sampler logs each change of its steering set, for the report of a failure
  std::string text = toml({.address = local_address(port),
                           .count = count,
                           .preforkd = "log_level = \"trace\"\nebpf = \"" + ebpf + "\"\n",
                           .command = {fixture("sync_worker")}});
  return text + listen_extra;
}

// What balances the listener, from status: "ebpf" or "sampler".
std::string balanced_by(const Daemon& d) {
  auto status = status_of(d);
  if (!status) return "";
  return (*status)["listeners"][0].value("balanced_by", std::string());
}

// Connections the eBPF program sent to a worker so far, waiting or busy (-1 without a program).
long long steered_by_program(const Daemon& d) {
  auto status = status_of(d);
  if (!status || !(*status)["listeners"][0].contains("steered")) return -1;
  const auto& steered = (*status)["listeners"][0]["steered"];
  return steered.value("waiting", 0LL) + steered.value("busy", 0LL);
}

// The "activity" the status shows for the worker with `pid` ("" when not found).
std::string activity_of(const Daemon& d, pid_t pid) {
  auto status = status_of(d);
  if (!status) return "";
  for (const auto& w : (*status)["workers"])
    if (w["pid"].get<pid_t>() == pid) return w.value("activity", std::string());
  return "";
}

pid_t pid_in_body(const std::string& body) {
  const auto at = body.find("(pid ");
  return at == std::string::npos ? -1 : static_cast<pid_t>(std::stol(body.substr(at + 5)));
}

// The worker that has accepted `pending` (its only busy one), from status.
pid_t busy_worker(const Daemon& d) {
  auto status = status_of(d);
  if (!status) return -1;
  for (const auto& w : (*status)["workers"])
    if (w.value("activity", std::string()) == "busy") return w["pid"].get<pid_t>();
  return -1;
}

}  // namespace

TEST_CASE("no fresh connection waits behind a busy synchronous worker while another waits") {
  const std::string ebpf = GENERATE(as<std::string>{}, "auto", "off");
  INFO("preforkd.ebpf = " << ebpf);
  const int port = free_port();
  Daemon d(sync_config(port, 2, "", ebpf));
  const auto ready = wait_workers_ready(d, 2);
  REQUIRE(ready);
  const auto pids = pids_in(*ready);
  CHECK(balanced_by(d) == (ebpf == "off" ? "sampler" : "ebpf"));
  const long long steered_before = steered_by_program(d);
  // Both in accept first: a worker that is still starting shows busy too, and would be
  // taken below for the one that holds the long request.
  REQUIRE(wait_until([&] { return activity_of(d, pids.at(0)) == "waiting" && activity_of(d, pids.at(1)) == "waiting"; }, 10s));

  // Hold one worker busy for 3 s and wait until status sees it busy (and the other waiting).
  PendingGet long_request(port, "/?ms=3000");
  REQUIRE(long_request.sent());
  pid_t busy = -1;
  REQUIRE(wait_until([&] { return (busy = busy_worker(d)) > 0; }, 10s));
  const pid_t other = pids.at(0) == busy ? pids.at(1) : pids.at(0);
  REQUIRE(wait_until([&] { return activity_of(d, other) == "waiting"; }, 10s));

  // 20 short requests, one after another, each on a fresh connection: all go to the
  // waiting worker. With plain hash spreading about half would wait for the 3 s request.
  int slow = 0;
  std::string report;
  for (int i = 0; i < 20; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const auto r = http_get(port, "/?ms=1", 10s);
    const auto took = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - start);
    REQUIRE(r);
    CHECK(r->status == 200);
    if (took > 500ms) ++slow;
    report += std::to_string(took.count()) + " ms (pid " + std::to_string(pid_in_body(r->body)) + "); ";
  }
  INFO(report);
  CHECK(slow == 0);
  // The kernel program placed them. Most go to the worker while it waits in accept(); one
  // that arrives while that worker is between close() and its next accept() finds both
  // busy and goes to the one picked last, the same worker (the rank's tie-break).
  if (ebpf != "off") CHECK(steered_by_program(d) - steered_before >= 20);
  const auto answer = long_request.response(10s);
  REQUIRE(answer);
  INFO(d.log());
  CHECK(pid_in_body(answer->body) == busy);
  stop_cleanly(d);
}

TEST_CASE("a stopped (SIGSTOP) worker gets no new connection while another waits") {
  const std::string ebpf = GENERATE(as<std::string>{}, "auto", "off");
  INFO("preforkd.ebpf = " << ebpf);
  const int port = free_port();
  Daemon d(sync_config(port, 2, "", ebpf));
  const auto ready = wait_workers_ready(d, 2);
  REQUIRE(ready);
  const auto pids = pids_in(*ready);
  const pid_t stopped = pids.at(0), running = pids.at(1);
  // Both in accept first, so that "busy" below means stopped, not still starting.
  REQUIRE(wait_until([&] { return activity_of(d, stopped) == "waiting" && activity_of(d, running) == "waiting"; }, 10s));
  REQUIRE(::kill(stopped, SIGSTOP) == 0);
  // Whatever happens below, the worker runs again before the daemon stops.
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{stopped};
  REQUIRE(wait_until([&] { return activity_of(d, stopped) == "busy"; }, 10s));
  REQUIRE(wait_until([&] { return activity_of(d, running) == "waiting"; }, 10s));

  // 30 fresh connections one after another: every one answered by the running worker (one
  // queued on the stopped worker's socket would wait until SIGCONT, which comes only after
  // the loop: a generous timeout loses nothing and keeps a slow machine from failing it).
  for (int i = 0; i < 30; ++i) {
    const auto r = http_get(port, "/?ms=1", 10s);
    INFO("request " << i);
    INFO(d.log());
    REQUIRE(r);
    CHECK(pid_in_body(r->body) == running);
  }
  ::kill(stopped, SIGCONT);
  stop_cleanly(d);
}

TEST_CASE("status shows each worker waiting or busy and its queue - in the table and in JSON") {
  const int port = free_port();
  Daemon d(sync_config(port, 1));
  REQUIRE(wait_workers_ready(d, 1));
  REQUIRE(wait_until([&] {
    auto s = status_of(d);
    return s && (*s)["workers"][0].value("activity", std::string()) == "waiting";
  }, 10s));
  auto status = status_of(d);
  REQUIRE(status);
  INFO(status->dump());
  CHECK((*status)["workers"][0]["queued"] == 0);
  CHECK((*status)["listeners"][0]["balance"] == "load");
  const auto table = ctl(d, {"status"});
  INFO(table.out);
  CHECK(table.out.find("LOAD") != std::string::npos);
  CHECK(table.out.find("QUEUED") != std::string::npos);
  CHECK(table.out.find("waiting") != std::string::npos);
  CHECK(table.out.find("reuseport (load, ebpf)") != std::string::npos);
  CHECK((*status)["listeners"][0]["balanced_by"] == "ebpf");
  stop_cleanly(d);
}

TEST_CASE("preforkd.ebpf = off balances by sampling and says so in status") {
  const int port = free_port();
  Daemon d(sync_config(port, 1, "", "off"));
  REQUIRE(wait_workers_ready(d, 1));
  REQUIRE(d.wait_log("the master samples the workers (preforkd.ebpf = \"off\")"));
  auto status = status_of(d);
  REQUIRE(status);
  CHECK((*status)["listeners"][0]["balanced_by"] == "sampler");
  CHECK_FALSE((*status)["listeners"][0].contains("steered"));
  const auto table = ctl(d, {"status"});
  INFO(table.out);
  CHECK(table.out.find("reuseport (load, sampler)") != std::string::npos);
  stop_cleanly(d);
}

TEST_CASE("preforkd.ebpf = on refuses to start where the program cannot load") {
  // Root without capabilities (an empty bounding set at exec): bpf() is refused, and
  // "on" must stop the start rather than fall back.
  TempDir dir;
  const int port = free_port();
  std::ofstream(dir.file("app.toml")) << sync_config(port, 1, "", "on");
  const auto [code, out] = run_command({"/usr/bin/setpriv", "--bounding-set", "-all", PREFORKD_BIN, "--config",
                                        dir.file("app.toml")});
  INFO(out);
  CHECK(code == 1);
  CHECK(out.find("preforkd.ebpf = \"on\": eBPF steering: cannot load the program: operation not permitted") !=
        std::string::npos);

  // --check says it first, with the place, as a config error (exit 78).
  const auto [check_code, check_out] = run_command({"/usr/bin/setpriv", "--bounding-set", "-all", PREFORKD_BIN,
                                                    "--config", dir.file("app.toml"), "--check"});
  INFO(check_out);
  CHECK(check_code == 78);
  CHECK(check_out.find("app.toml:") != std::string::npos);
  CHECK(check_out.find("preforkd.ebpf: eBPF steering: cannot load the program: operation not permitted") !=
        std::string::npos);
  // With the capabilities it passes.
  CHECK(run_preforkd({"--config", dir.file("app.toml"), "--check"}).first == 0);
}

TEST_CASE("balance = hash keeps plain kernel spreading over live slots") {
  const int port = free_port();
  Daemon d(sync_config(port, 2, "balance = \"hash\"\n"));
  REQUIRE(wait_workers_ready(d, 2));
  auto status = status_of(d);
  REQUIRE(status);
  CHECK((*status)["listeners"][0]["balance"] == "hash");
  // Both workers still answer (hash spreads fresh connections over both).
  std::set<pid_t> seen;
  REQUIRE(wait_until([&] {
    if (auto r = http_get(port, "/", 5s)) seen.insert(pid_in_body(r->body));
    return seen.size() == 2;
  }));
  stop_cleanly(d);

  // A slot in backoff holds its socket in the group but has no worker: hash leaves it
  // out, so no fresh connection waits in its queue. Slot 1 crashes 200 ms after each
  // start, before it serves: after its second crash it backs off for 30 s.
  const int port2 = free_port();
  Daemon crashing(toml({.address = local_address(port2),
                        .count = 2,
                        .args = {"--slot-only", "1", "--crash-after-ms", "200"},
                        .worker = "backoff_initial = \"30s\"\nbackoff_max = \"30s\"\n"}) +
                  "balance = \"hash\"\n");
  INFO(crashing.log());
  REQUIRE(wait_until([&] {
    const auto st = status_of(crashing);
    return st && (*st)["workers"].size() == 2 && (*st)["workers"][0].value("state", "") == "ready" &&
           (*st)["workers"][1].value("state", "") == "backoff";
  }));
  const pid_t live = worker_pid(crashing.pid(), 0);
  REQUIRE(live > 0);
  // Were slot 1's socket still drawn, about half of these would wait out their 3 s.
  int answered_by_live = 0;
  for (int i = 0; i < 20; ++i) {
    const auto h = hello(port2, 3s);
    if (h && h->pid == live) ++answered_by_live;
  }
  CHECK(answered_by_live == 20);
  const auto st = status_of(crashing);
  REQUIRE(st);
  CHECK((*st)["workers"][1].value("state", "") == "backoff");  // still: no worker in slot 1 meanwhile
  stop_cleanly(crashing);
}

TEST_CASE("balance takes load or hash - on reuseport listeners only - with file:line:col errors") {
  TempDir dir;
  const auto check = [&](const std::string& listen_extra) {
    const std::string path = dir.file("app.toml");
    std::ofstream(path) << sync_config(free_port(), 1, listen_extra);
    return run_preforkd({"--config", path, "--check"});
  };
  CHECK(check("balance = \"load\"\n").first == 0);
  CHECK(check("balance = \"hash\"\n").first == 0);
  const auto [code, out] = check("balance = \"fair\"\n");
  CHECK(code == 78);
  CHECK(out.find("app.toml:") != std::string::npos);
  CHECK(out.find("listen[0].balance: ") != std::string::npos);
  CHECK(out.find("\"load\"") != std::string::npos);
  const auto [shared_code, shared_out] = check("mode = \"shared\"\nbalance = \"load\"\n");
  CHECK(shared_code == 78);
  CHECK(shared_out.find("applies only to mode = \"reuseport\"") != std::string::npos);
}
