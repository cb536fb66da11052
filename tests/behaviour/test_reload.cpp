// Reload is a transaction: a bad file or a new worker that never gets ready changes
// nothing; a good one replaces every worker slot by slot without dropping a connection.
// `preforkctl reload` and SIGHUP do the same.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>

#include "control_helpers.hpp"

using namespace bt;
using nlohmann::json;

namespace {

// Two demo workers whose environment carries DEMO_VERSION = `version`: changing it makes a
// reload roll every worker.
// Each new worker takes a while to get ready, so a rolling reload has old and new
// workers side by side for a noticeable time while the load runs.
DemoConfig versioned(int port, const std::string& version) {
  return {.address = local_address(port),
          .count = 2,
          .args = {"--ready-delay-ms", "400"},
          .ready = "notify",
          .worker = "ready_timeout = \"20s\"\nenv = { DEMO_VERSION = " + toml_string(version) + " }\n"};
}

std::string second_listener(int port) {
  return "\n[[listen]]\nname = \"admin\"\naddress = " + toml_string(local_address(port)) + "\n";
}

bool none_alive(const std::vector<pid_t>& pids) {
  for (pid_t p : pids)
    if (process_alive(p)) return false;
  return true;
}

// The worker pids a fresh round of requests sees, by slot.
std::vector<pid_t> answering_pids(int port, int count) {
  std::vector<pid_t> pids(static_cast<std::size_t>(count), -1);
  for (const Hello& h : distinct_workers(port, count))
    if (h.slot >= 0 && h.slot < count) pids[static_cast<std::size_t>(h.slot)] = h.pid;
  return pids;
}

}  // namespace

TEST_CASE("a reload with a config error fails with file:line:col and leaves every worker", "[control]") {
  const int port = free_port();
  const std::string good = toml(versioned(port, "1"));
  Daemon d(good);
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto pids = pids_in(*before);
  REQUIRE(answering_pids(port, 2) == pids);

  // count = 0 on a known line: the error must point at it (column 9, the value).
  std::string bad = good;
  const auto at = bad.find("count = 2");
  REQUIRE(at != std::string::npos);
  bad.replace(at, 9, "count = 0");
  const int line = 1 + static_cast<int>(std::count(bad.begin(), bad.begin() + static_cast<long>(at), '\n'));
  rewrite_config(d, bad);

  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(d.config_path() + ":" + std::to_string(line) + ":9: worker.count") != std::string::npos);

  const auto after = wait_workers_ready(d, 2, 0);
  REQUIRE(after);
  CHECK(pids_in(*after) == pids);
  CHECK(answering_pids(port, 2) == pids);
  CHECK(processes_of_master(d.pid()).size() == 2);

  stop_cleanly(d);
}

TEST_CASE("a good reload replaces every worker while a client sees no failure", "[control]") {
  const int port = free_port();
  Daemon d(toml(versioned(port, "1")));
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto old_pids = pids_in(*before);
  REQUIRE(answering_pids(port, 2) == old_pids);

  // Fresh connections, one after another, for the whole reload (two clients).
  LoadClient load_a(port), load_b(port);
  REQUIRE(load_a.wait_answered(20));
  REQUIRE(load_b.wait_answered(20));
  rewrite_config(d, toml(versioned(port, "2")));
  const CtlResult r = ctl(d, {"reload"});
  // The reply comes when the reload is finished: new generation, every old worker gone.
  const auto right_after = status_of(d);
  const bool old_gone = none_alive(old_pids);
  // And the load goes on a little after it, on the new workers.
  CHECK(load_a.wait_answered(20));
  const auto a = load_a.stop();
  const auto b = load_b.stop();
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\n"
                  << describe(a) << "\n"
                  << describe(b) << "\nlog: " << d.log());
  REQUIRE(r.exit_code == 0);
  CHECK(a.failed == 0);
  CHECK(b.failed == 0);
  CHECK(a.answered > 0);
  CHECK(b.answered > 0);

  REQUIRE(right_after);
  CHECK((*right_after)["master"].value("generation", -1) == 1);
  CHECK(old_gone);
  const auto after = wait_workers_ready(d, 2, 1);
  REQUIRE(after);
  const auto new_pids = pids_in(*after);
  CHECK(pids_in(*right_after) == new_pids);
  for (pid_t p : new_pids) {
    CHECK(p > 0);
    CHECK(std::find(old_pids.begin(), old_pids.end(), p) == old_pids.end());
  }

  const auto envs = env_of_workers(port, 2);
  for (std::size_t slot = 0; slot < envs.size(); ++slot) {
    INFO("slot " << slot << ": " << envs[slot].dump());
    REQUIRE(envs[slot].is_object());
    CHECK(envs[slot]["env"].value("PREFORK_GENERATION", "") == "1");
    CHECK(envs[slot]["env"].value("DEMO_VERSION", "") == "2");
    CHECK(envs[slot].value("pid", -1) == new_pids[slot]);
  }

  stop_cleanly(d);
}

TEST_CASE("a reload whose new workers never get ready rolls back and the old workers keep serving", "[control]") {
  const int port = free_port();
  DemoConfig c{.address = local_address(port), .count = 2, .ready = "notify", .worker = "ready_timeout = \"2s\"\n"};
  Daemon d(toml(c));
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto old_pids = pids_in(*before);
  REQUIRE(answering_pids(port, 2) == old_pids);

  // A client runs through the whole reload: before it, during the 2 s the new worker is
  // not ready, through the rollback and after.
  LoadClient load(port);
  REQUIRE(load.wait_answered(10));
  c.args = {"--no-ready"};
  rewrite_config(d, toml(c));
  const int answered_before = load.answered();
  const CtlResult r = ctl(d, {"reload"});
  const int answered_during = load.answered() - answered_before;
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("not ready within 2s") != std::string::npos);
  CHECK(r.err.find("rolled back") != std::string::npos);
  // The reply came after ready_timeout (2 s): the old workers answered meanwhile.
  INFO("answered during the reload: " << answered_during);
  CHECK(answered_during >= 10);

  const auto after = wait_workers_ready(d, 2, 0);
  REQUIRE(after);
  CHECK(pids_in(*after) == old_pids);
  // The new worker that never got ready is gone; only the old ones answer.
  CHECK(wait_until([&] { return processes_of_master(d.pid()).size() == 2; }));
  CHECK(answering_pids(port, 2) == old_pids);
  CHECK(load.wait_answered(30));
  const auto seen = load.stop();
  INFO(describe(seen));
  CHECK(seen.failed == 0);
  for (const pid_t old : old_pids) CHECK(seen.pids.count(old) == 1);

  stop_cleanly(d);
}

TEST_CASE("SIGHUP reloads like preforkctl reload", "[control]") {
  const int port = free_port();
  Daemon d(toml(versioned(port, "1")));
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto old_pids = pids_in(*before);

  rewrite_config(d, toml(versioned(port, "2")));
  d.signal(SIGHUP);
  const auto after = wait_workers_ready(d, 2, 1, 60s);
  INFO(d.log());
  REQUIRE(after);
  const auto new_pids = pids_in(*after);
  for (pid_t p : new_pids) CHECK(std::find(old_pids.begin(), old_pids.end(), p) == old_pids.end());
  CHECK(wait_until([&] { return none_alive(old_pids); }));
  const auto envs = env_of_workers(port, 2);
  for (const auto& e : envs) {
    REQUIRE(e.is_object());
    CHECK(e["env"].value("DEMO_VERSION", "") == "2");
    CHECK(e["env"].value("PREFORK_GENERATION", "") == "1");
  }

  stop_cleanly(d);
}

TEST_CASE("a reload that adds a listener makes both ports answer", "[control]") {
  const int port = free_port();
  int port2 = free_port();
  while (port2 == port) port2 = free_port();
  const std::string one = toml({.address = local_address(port), .count = 2});
  Daemon d(one);
  REQUIRE(wait_workers_ready(d, 2, 0));
  REQUIRE(distinct_workers(port, 2).size() == 2);
  REQUIRE_FALSE(http_get(port2, "/", 2s));  // nobody there yet

  rewrite_config(d, one + second_listener(port2));
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  REQUIRE(r.exit_code == 0);

  const auto s = wait_workers_ready(d, 2, 1);
  REQUIRE(s);
  const auto pids = pids_in(*s);
  REQUIRE((*s)["listeners"].size() == 2);
  CHECK((*s)["listeners"][1].value("address", "") == local_address(port2));
  // Both ports, every worker, and the same (new) workers on both.
  auto on_first = answering_pids(port, 2);
  auto on_second = answering_pids(port2, 2);
  CHECK(on_first == pids);
  CHECK(on_second == pids);

  stop_cleanly(d);
}

TEST_CASE("a reload whose new listener cannot bind changes nothing", "[control]") {
  const int port = free_port();
  int port2 = free_port();
  while (port2 == port) port2 = free_port();
  // A plain socket (no SO_REUSEPORT) holds the port: preforkd's bind must fail.
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(holder >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port2));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(holder, 16) == 0);

  const std::string one = toml({.address = local_address(port), .count = 2});
  Daemon d(one);
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto pids = pids_in(*before);
  REQUIRE(answering_pids(port, 2) == pids);

  rewrite_config(d, one + second_listener(port2));
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(local_address(port2)) != std::string::npos);

  const auto after = wait_workers_ready(d, 2, 0);
  REQUIRE(after);
  CHECK(pids_in(*after) == pids);
  CHECK((*after)["listeners"].size() == 1);
  CHECK(answering_pids(port, 2) == pids);
  CHECK(processes_of_master(d.pid()).size() == 2);
  ::close(holder);

  stop_cleanly(d);
}
