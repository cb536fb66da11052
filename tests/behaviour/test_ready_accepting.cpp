// ready = "accepting": a worker is ready once it is seen waiting for connections on its
// own socket (blocked in accept() on it, or the socket in an epoll set), without its help.
// A worker that sleeps before it accepts is starting until then; one that binds a socket
// of its own (or waits only in poll(), which /proc cannot show) is never ready and is
// reported after ready_timeout; an epoll server and a forked accepting child count; a
// reload waits for the new workers to accept; unix and shared listeners work the same.

#include "harness.hpp"
#include "systemd_helpers.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <future>
#include <set>

using namespace bt;
using namespace bt::sd;

namespace {

DemoConfig accept_worker(const std::string& address, int count, std::vector<std::string> args,
                         const std::string& ready = "accepting") {
  std::vector<std::string> command{fixture("accept_worker")};
  command.insert(command.end(), args.begin(), args.end());
  return DemoConfig{.address = address, .count = count, .ready = ready, .command = command};
}

// Waits until `count` workers are all `state`; the last status read.
std::optional<nlohmann::json> wait_all(const Daemon& d, int count, const std::string& state) {
  std::optional<nlohmann::json> s;
  if (!wait_until([&] {
        s = status_json(d);
        return s && all_in_state(*s, count, state);
      }))
    return std::nullopt;
  return s;
}

void stop_cleanly(Daemon& d) {
  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}

}  // namespace

TEST_CASE("a worker that sleeps before it accepts is starting until it accepts then ready", "[ready]") {
  const int port = free_port();
  constexpr int delay_ms = 6000;  // long enough that status is read before it, on a loaded machine
  const auto started = Clock::now();
  Daemon d(toml(accept_worker(local_address(port), 2, {"--delay-ms", std::to_string(delay_ms)})));

  // Both workers run, and asked well before their delay is up: starting, none ready.
  std::optional<nlohmann::json> early;
  REQUIRE(wait_until([&] {
    early = status_json(d);
    return early && worker_states(*early).size() == 2;
  }));
  const auto early_at = Clock::now();
  INFO(early->dump());
  // The workers started after `started`: a status read before +delay was made before
  // either could accept.
  REQUIRE(ms_between(started, early_at) < delay_ms);
  CHECK(all_in_state(*early, 2, "starting"));
  CHECK((*early)["master"]["workers_ready"] == 0);

  // Then ready, not before the delay, and serving.
  const auto late = wait_all(d, 2, "ready");
  const auto ready_at = Clock::now();
  INFO(d.log());
  REQUIRE(late);
  CHECK(ms_between(started, ready_at) >= delay_ms);
  CHECK((*late)["master"]["workers_ready"] == 2);
  for (const auto& [pid, state] : worker_states(*early)) CHECK(worker_states(*late).contains(pid));  // same workers
  CHECK(distinct_workers(port, 2).size() == 2);

  stop_cleanly(d);
}

TEST_CASE("a worker that never waits on its own socket is never ready and is reported after ready_timeout",
          "[ready]") {
  const int port = free_port();
  // --own-socket: accepts on a socket it bound itself (as nginx without NGINX=3;);
  // --poll: waits in poll() on fd 3, which /proc cannot show (documented).
  const std::string flag = GENERATE(std::string("--own-socket"), std::string("--poll"));
  INFO(flag);
  DemoConfig config = accept_worker(local_address(port), 1, {flag});
  config.worker = "ready_timeout = \"2s\"\n";
  Daemon d(toml(config));

  // Until the report, no status ever shows a ready worker.
  bool ever_ready = false;
  const std::string report = "was not ready within 2s; it never waited for connections on its socket";
  REQUIRE(wait_until([&] {
    if (auto s = status_json(d)) {
      for (const auto& [pid, state] : worker_states(*s)) ever_ready = ever_ready || state == "ready";
      ever_ready = ever_ready || (*s)["master"]["workers_ready"] != 0;
    }
    return d.count_log(report) > 0;
  }));
  INFO(d.log());
  CHECK_FALSE(ever_ready);
  CHECK(d.log().find("stopping it") != std::string::npos);

  stop_cleanly(d);
}

TEST_CASE("an epoll server and a server that accepts in a forked child become ready", "[ready]") {
  const int port = free_port();
  SECTION("the demo worker: the socket in its epoll set") {
    Daemon d(toml({.address = local_address(port), .count = 2, .ready = "accepting"}));
    const auto s = wait_all(d, 2, "ready");
    INFO(d.log());
    REQUIRE(s);
    CHECK(distinct_workers(port, 2).size() == 2);
    stop_cleanly(d);
  }
  SECTION("accept() in a child of the worker") {
    Daemon d(toml(accept_worker(local_address(port), 2, {"--fork"})));
    const auto s = wait_all(d, 2, "ready");
    INFO(d.log());
    REQUIRE(s);
    // The answer comes from the child, not from the worker process status shows.
    const auto h = hello(port);
    REQUIRE(h);
    CHECK_FALSE(worker_states(*s).contains(h->pid));
    stop_cleanly(d);
  }
}

TEST_CASE("unix and shared listeners: the worker waits on the shared socket", "[ready]") {
  TempDir dir;
  const std::string path = dir.file("s.sock");
  Daemon d(toml(accept_worker("unix:" + path, 2, {})) + "mode = \"shared\"\n");
  const auto s = wait_all(d, 2, "ready");
  INFO(d.log());
  REQUIRE(s);
  const auto r = http_get_unix(path, "/");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(parse_hello(r->body));
  stop_cleanly(d);
}

TEST_CASE("a reload with ready = accepting waits for the new workers to accept while the old ones serve",
          "[ready]") {
  const int port = free_port();
  DemoConfig config = accept_worker(local_address(port), 2, {});
  Daemon d(toml(config));
  REQUIRE(wait_all(d, 2, "ready"));
  const auto old_workers = distinct_workers(port, 2);
  REQUIRE(old_workers.size() == 2);
  std::set<pid_t> old_pids;
  for (const auto& w : old_workers) old_pids.insert(w.pid);

  // The new workers accept 2500 ms after they start.
  constexpr int delay_ms = 2500;
  config = accept_worker(local_address(port), 2, {"--delay-ms", std::to_string(delay_ms)});
  d.dir().write("app.toml", toml(config));
  const auto reload_started = Clock::now();
  auto reload = std::async(std::launch::async, [&] { return run_preforkctl(control_socket(d), {"reload"}, 60s); });

  int answered = 0, failed = 0, by_old = 0;
  while (reload.wait_for(0ms) != std::future_status::ready) {
    if (auto h = hello(port, 10s)) {
      ++answered;
      by_old += old_pids.contains(h->pid) ? 1 : 0;
    } else {
      ++failed;
    }
  }
  const auto reply = reload.get();
  const auto reload_took = ms_between(reload_started, Clock::now());
  INFO("reload: code " << reply.code << ", out: " << reply.out << ", err: " << reply.err);
  INFO("answered " << answered << ", by old workers " << by_old << ", failed " << failed);
  INFO(d.log());
  REQUIRE(reply.code == 0);
  CHECK(reply.out.find("generation 1") != std::string::npos);
  CHECK(reload_took >= delay_ms);
  CHECK(failed == 0);
  CHECK(by_old > 0);

  const auto after = wait_all(d, 2, "ready");
  REQUIRE(after);
  CHECK((*after)["master"]["generation"] == 1);
  for (const auto& [pid, state] : worker_states(*after)) CHECK_FALSE(old_pids.contains(pid));

  // A reload to workers that never wait on their socket fails, says why, and changes nothing.
  DemoConfig broken = accept_worker(local_address(port), 2, {"--own-socket"});
  broken.worker = "ready_timeout = \"2s\"\n";
  d.dir().write("app.toml", toml(broken));
  const auto failed_reload = run_preforkctl(control_socket(d), {"reload"}, 60s);
  INFO("failed reload: code " << failed_reload.code << ", out: " << failed_reload.out << ", err: " << failed_reload.err);
  CHECK(failed_reload.code != 0);
  CHECK((failed_reload.out + failed_reload.err).find("never waited for connections on its socket") !=
        std::string::npos);
  const auto kept = wait_all(d, 2, "ready");
  REQUIRE(kept);
  CHECK((*kept)["master"]["generation"] == 1);
  CHECK(worker_states(*kept) == worker_states(*after));

  stop_cleanly(d);
}
