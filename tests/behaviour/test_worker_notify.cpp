// Workers that speak sd_notify to the master (ready = "notify"): a worker is "starting"
// until its READY=1 arrives, a reload waits for new workers' READY=1 while the old ones
// keep serving, and a worker's STATUS= text shows in `preforkctl status`.

#include "harness.hpp"
#include "systemd_helpers.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <future>
#include <set>

using namespace bt;
using namespace bt::sd;

TEST_CASE("a worker with ready = notify is starting until it sends READY=1", "[systemd]") {
  const int port = free_port();
  const auto started = Clock::now();
  Daemon d(toml({.address = local_address(port), .count = 2, .args = {"--ready-delay-ms", "3000"}, .ready = "notify"}));

  // Both workers are running, and asked well before their 3000 ms are up: starting.
  std::optional<nlohmann::json> early;
  REQUIRE(wait_until([&] {
    early = status_json(d);
    return early && worker_states(*early).size() == 2;
  }));
  const auto early_at = Clock::now();
  INFO(early->dump());
  // The workers started after `started`; a reply that came back before +3000 ms was
  // made before either could be ready (3000 ms, not less: leaves room on a busy machine).
  REQUIRE(ms_between(started, early_at) < 3000);
  CHECK(all_in_state(*early, 2, "starting"));
  CHECK((*early)["master"]["workers_ready"] == 0);

  // Then ready, but not before the delay.
  std::optional<nlohmann::json> late;
  REQUIRE(wait_until([&] {
    late = status_json(d);
    return late && all_in_state(*late, 2, "ready");
  }));
  const auto ready_at = Clock::now();
  CHECK(ms_between(started, ready_at) >= 3000);
  CHECK((*late)["master"]["workers_ready"] == 2);
  CHECK(worker_states(*late).size() == 2);
  for (const auto& [pid, state] : worker_states(*early)) CHECK(worker_states(*late).contains(pid));  // same workers

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("a reload waits for new workers that delay READY=1 while the old ones serve", "[systemd]") {
  const int port = free_port();
  DemoConfig config{.address = local_address(port), .count = 2, .ready = "notify"};
  Daemon d(toml(config));
  REQUIRE(wait_until([&] {
    auto s = status_json(d);
    return s && all_in_state(*s, 2, "ready");
  }));
  const auto old_workers = distinct_workers(port, 2);
  REQUIRE(old_workers.size() == 2);
  std::set<pid_t> old_pids;
  for (const auto& w : old_workers) old_pids.insert(w.pid);

  // The new workers send READY=1 2000 ms after they start.
  config.args = {"--ready-delay-ms", "2000"};
  d.dir().write("app.toml", toml(config));
  const auto reload_started = Clock::now();
  auto reload = std::async(std::launch::async, [&] { return run_preforkctl(control_socket(d), {"reload"}, 60s); });

  // Meanwhile: every request is answered, and the old workers stay alive while no new
  // one can be ready yet (checked up to +1500 ms, well inside the 2000 ms).
  int answered = 0, failed = 0, by_old = 0;
  Clock::time_point last_alive_check{};
  bool old_alive_throughout = true;
  while (reload.wait_for(0ms) != std::future_status::ready) {
    const auto before = Clock::now();
    if (ms_between(reload_started, before) < 1500) {
      for (pid_t pid : old_pids) old_alive_throughout = old_alive_throughout && process_alive(pid);
      last_alive_check = before;
    }
    if (auto h = hello(port, 5s)) {
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
  REQUIRE(reply.code == 0);
  CHECK(reply.out.find("generation 1") != std::string::npos);
  CHECK(reload_took >= 2000);
  // The check above was not empty: it covered a good part of the wait.
  REQUIRE(ms_between(reload_started, last_alive_check) >= 700);
  CHECK(old_alive_throughout);
  CHECK(failed == 0);
  CHECK(answered > 0);
  CHECK(by_old > 0);

  // Afterwards only new workers, all ready, and the old ones are gone.
  const auto after = status_json(d);
  REQUIRE(after);
  INFO(after->dump());
  CHECK(all_in_state(*after, 2, "ready"));
  CHECK((*after)["master"]["generation"] == 1);
  for (const auto& [pid, state] : worker_states(*after)) CHECK_FALSE(old_pids.contains(pid));
  for (pid_t pid : old_pids) CHECK(wait_until([&] { return !process_alive(pid); }));

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("a worker's STATUS= text shows in preforkctl status", "[systemd]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .ready = "notify",
                 .command = {fixture("notify_fixture"), "--status", "warmed up, serving"}}));

  std::optional<nlohmann::json> status;
  REQUIRE(wait_until([&] {
    status = status_json(d);
    return status && all_in_state(*status, 2, "ready");
  }));
  INFO(status->dump());
  // Each worker's own text, attributed by the sender's pid.
  for (const auto& w : (*status)["workers"]) {
    const auto pid = w["pid"].get<pid_t>();
    CHECK(w["notify_status"] == "warmed up, serving (pid " + std::to_string(pid) + ")");
  }
  // And in the table an operator reads.
  const auto table = run_preforkctl(control_socket(d), {"status"});
  INFO(table.out << table.err);
  CHECK(table.code == 0);
  CHECK(table.out.find("warmed up, serving") != std::string::npos);

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}
