// Respawn: a worker killed with SIGKILL is replaced on the same slot, on the same socket,
// and the connections queued on that socket meanwhile are served by the replacement.

#include <catch2/catch.hpp>
#include <csignal>
#include <nlohmann/json.hpp>
#include <set>

#include "harness.hpp"

using namespace bt;

namespace {

struct SlotEnv {
  pid_t pid = -1;
  unsigned long inode = 0;
  int fd = -1;
};

// Asks /env until the worker of `slot` (and, when given, with pid `want`) answers.
std::optional<SlotEnv> env_of_slot(int port, int slot, pid_t want = -1) {
  SlotEnv out;
  const bool found = wait_until([&] {
    auto r = http_get(port, "/env", 5s);
    if (!r || r->status != 200) return false;
    const auto env = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    if (env.is_discarded() || env["slot"] != std::to_string(slot)) return false;
    out.pid = env["pid"].get<pid_t>();
    if (want > 0 && out.pid != want) return false;
    if (env["fds"].size() != 1) return false;
    out.fd = env["fds"][0]["fd"].get<int>();
    out.inode = env["fds"][0]["inode"].get<unsigned long>();
    return true;
  });
  if (!found) return std::nullopt;
  return out;
}

// Waits for a worker in `slot` whose pid is not `old` (-1 on timeout).
pid_t replacement_of(pid_t master, int slot, pid_t old) {
  pid_t pid = -1;
  wait_until([&] {
    pid = worker_pid(master, slot);
    return pid > 0 && pid != old;
  });
  return pid == old ? -1 : pid;
}

}  // namespace

TEST_CASE("kill -9 of a worker gives a new pid on the same slot with the same socket inode") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  REQUIRE(distinct_workers(port, 2).size() == 2);

  const auto before = env_of_slot(port, 1);
  REQUIRE(before);
  REQUIRE(before->fd == 3);
  REQUIRE(worker_pid(d.pid(), 1) == before->pid);
  const pid_t other = worker_pid(d.pid(), 0);
  REQUIRE(other > 0);

  REQUIRE(::kill(before->pid, SIGKILL) == 0);
  const pid_t new_pid = replacement_of(d.pid(), 1, before->pid);
  REQUIRE(new_pid > 0);

  const auto after = env_of_slot(port, 1, new_pid);
  REQUIRE(after);
  CHECK(after->fd == 3);
  CHECK(after->inode == before->inode);
  CHECK(d.wait_log("worker 1 (pid " + std::to_string(before->pid) + ") exited on signal 9"));
  CHECK(worker_pid(d.pid(), 0) == other);  // the other slot was left alone

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("connections made while the only worker is dead are all answered once it is back") {
  const int port = free_port();
  // The first crash restarts at once; a second crash soon after waits backoff_initial
  // (at least 1 s, jitter only lengthens it), which is the window with no worker at all.
  Daemon d(
      toml({.address = local_address(port), .count = 1, .worker = "backoff_initial = \"1s\"\nbackoff_max = \"2s\"\n"}));
  const auto first = distinct_workers(port, 1);
  REQUIRE(first.size() == 1);
  REQUIRE(first[0].slot == 0);

  // Kill every new worker until the slot backs off (normally the second kill).
  std::set<pid_t> killed;
  pid_t current = first[0].pid;
  for (int attempt = 0; attempt < 5 && d.count_log("worker 0: restarting in") == 0; ++attempt) {
    REQUIRE(::kill(current, SIGKILL) == 0);
    killed.insert(current);
    wait_until([&] {
      if (d.count_log("worker 0: restarting in") > 0) return true;
      const pid_t p = worker_pid(d.pid(), 0);
      if (p > 0 && !killed.contains(p)) current = p;
      return !killed.contains(current);
    });
  }
  REQUIRE(d.count_log("worker 0: restarting in") == 1);

  std::vector<PendingGet> pending;
  for (int i = 0; i < 10; ++i) pending.emplace_back(port, "/");
  // All ten were made while the slot had no worker: not refused, queued on its socket.
  REQUIRE(worker_pid(d.pid(), 0) == -1);
  for (const auto& p : pending) CHECK(p.sent());

  std::set<pid_t> answered_by;
  int answered = 0;
  for (auto& p : pending) {
    const auto r = p.response(20s);
    if (!r) continue;
    INFO(r->body);
    CHECK(r->status == 200);
    if (auto h = parse_hello(r->body)) {
      ++answered;
      answered_by.insert(h->pid);
    }
  }
  CHECK(answered == 10);
  REQUIRE(answered_by.size() == 1);
  CHECK_FALSE(killed.contains(*answered_by.begin()));

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}
