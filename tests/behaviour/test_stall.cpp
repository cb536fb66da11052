// Hung workers (worker.stall_timeout): a worker whose accept queue holds connections and
// takes none for that long is stopped and replaced, and the connections queued on its
// socket are served by the replacement (the master holds the socket, so none is reset).
// A busy worker that keeps taking connections is left alone. Synchronous workers
// (tests/fixtures/sync_worker.cpp), one slot: every connection queues on its socket.

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>

#include "control_helpers.hpp"
#include "harness.hpp"

using namespace bt;

namespace {

std::string one_sync_worker(int port, const std::string& stall_timeout) {
  return toml({.address = local_address(port),
               .count = 1,
               .worker = "stall_timeout = " + toml_string(stall_timeout) + "\n",
               .command = {fixture("sync_worker")}}) +
         "balance = \"hash\"\n";
}

pid_t pid_in_body(const std::string& body) {
  const auto at = body.find("(pid ");
  return at == std::string::npos ? -1 : static_cast<pid_t>(std::stol(body.substr(at + 5)));
}

// The worker's activity in status ("waiting" once it blocks in accept).
std::string activity(const Daemon& d) {
  auto status = status_of(d);
  if (!status || (*status)["workers"].empty()) return "";
  return (*status)["workers"][0].value("activity", std::string());
}

}  // namespace

TEST_CASE("a stopped (SIGSTOP) worker with connections queued is replaced and they are all answered") {
  const int port = free_port();
  Daemon d(one_sync_worker(port, "1s"));
  const auto ready = wait_workers_ready(d, 1);
  REQUIRE(ready);
  const pid_t hung = pids_in(*ready).at(0);
  REQUIRE(wait_until([&] { return activity(d) == "waiting"; }, 10s));
  REQUIRE(::kill(hung, SIGSTOP) == 0);
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{hung};
  REQUIRE(wait_until([&] { return activity(d) == "busy"; }, 10s));

  // Three requests queue on the only socket, behind a worker that takes none.
  std::vector<PendingGet> queued;
  for (int i = 0; i < 3; ++i) {
    queued.emplace_back(port, "/?ms=1");
    REQUIRE(queued.back().sent());
  }
  REQUIRE(wait_until([&] {
    return std::all_of(queued.begin(), queued.end(), [](const PendingGet& p) { return p.delivered(); });
  }, 10s));

  const std::string line = "worker 0 (pid " + std::to_string(hung) + "): stalled: 3 connections queued, none taken for";
  REQUIRE(d.wait_log(line, 20s));
  INFO(d.log());
  // Every queued connection is served, by the replacement.
  for (auto& p : queued) {
    const auto r = p.response(20s);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(pid_in_body(r->body) != hung);
    CHECK(pid_in_body(r->body) > 0);
  }
  CHECK(wait_until([&] { return !process_alive(hung); }, 10s));

  // The cause shows in status: the last exit was a stall, not a crash of its own.
  const auto status = status_of(d);
  REQUIRE(status);
  INFO(status->dump());
  const auto& last = (*status)["workers"][0]["last_exit"];
  REQUIRE(last.is_object());
  CHECK(last["cause"] == "stalled");
  CHECK(last["text"].get<std::string>().find("(stalled)") != std::string::npos);
  CHECK((*status)["workers"][0]["restarts"].get<int>() >= 1);
  stop_cleanly(d);
}

TEST_CASE("a busy worker that keeps taking its queued connections is not stalled") {
  const int port = free_port();
  Daemon d(one_sync_worker(port, "1s"));
  const auto ready = wait_workers_ready(d, 1);
  REQUIRE(ready);
  const pid_t worker = pids_in(*ready).at(0);
  REQUIRE(wait_until([&] { return activity(d) == "waiting"; }, 10s));

  // 8 requests of 300 ms each: the queue is never empty for 2.4 s, more than twice the
  // timeout, but shrinks every 300 ms.
  std::vector<PendingGet> queued;
  for (int i = 0; i < 8; ++i) {
    queued.emplace_back(port, "/?ms=300");
    REQUIRE(queued.back().sent());
  }
  for (auto& p : queued) {
    const auto r = p.response(20s);
    INFO(d.log());
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(pid_in_body(r->body) == worker);
  }
  INFO(d.log());
  CHECK(d.count_log("stalled") == 0);
  CHECK(process_alive(worker));
  stop_cleanly(d);
}

TEST_CASE("worker.stall_timeout is checked: 0s or at least 100ms - at most 30 days") {
  TempDir dir;
  const auto check = [&](const std::string& value) {
    dir.write("stall.toml", toml({.address = local_address(free_port()),
                                        .count = 1,
                                        .worker = "stall_timeout = " + toml_string(value) + "\n",
                                        .command = {fixture("sync_worker")}}));
    return run_preforkd({"--config", dir.file("stall.toml"), "--check"});
  };
  CHECK(check("0s").first == 0);
  CHECK(check("100ms").first == 0);
  CHECK(check("720h").first == 0);
  const auto [low_code, low] = check("50ms");
  CHECK(low_code == 78);
  CHECK(low.find(R"(worker.stall_timeout: must be "0s" (off) or at least 100ms, got "50ms")") != std::string::npos);
  const auto [high_code, high] = check("721h");
  CHECK(high_code == 78);
  CHECK(high.find("worker.stall_timeout") != std::string::npos);
}
