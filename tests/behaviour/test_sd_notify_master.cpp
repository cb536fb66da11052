// The master under systemd (Type=notify): the test plays systemd with a notify socket of
// its own and checks what preforkd tells it: READY=1 only once the workers are ready,
// STATUS=, RELOADING=1 + MONOTONIC_USEC= then READY=1 around a reload, STOPPING=1 on
// TERM, WATCHDOG=1 at half of WATCHDOG_USEC; and that workers inherit none of it.

#include "harness.hpp"
#include "systemd_helpers.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <set>
#include <thread>
#include <unistd.h>

using namespace bt;
using namespace bt::sd;

namespace {

// Every message reached the fake systemd from the master itself: no worker inherited
// the master's NOTIFY_SOCKET.
void check_all_from_master(const FakeSystemd& systemd, pid_t master) {
  for (const auto& m : systemd.messages()) {
    INFO("message \"" << m.text << "\" from pid " << m.sender);
    CHECK(m.sender == master);
  }
}

}  // namespace

TEST_CASE("the master sends READY=1 only after its workers sent theirs - with a STATUS= summary", "[systemd]") {
  const int port = free_port();
  FakeSystemd systemd;
  // Each worker sends its own READY=1 to the master 1500 ms after it started.
  const auto started = Clock::now();
  auto d = start_daemon(toml({.address = local_address(port),
                              .count = 2,
                              .args = {"--ready-delay-ms", "1500"},
                              .ready = "notify"}),
                        {{"NOTIFY_SOCKET", systemd.path()}, {"WATCHDOG_USEC", std::nullopt}});

  const auto ready = systemd.wait_for("READY=1");
  REQUIRE(ready);
  const auto msgs = systemd.messages();
  const Datagram& r = msgs[*ready];
  // The workers started after `started`, so none can have been ready before +1500 ms.
  CHECK(ms_between(started, r.at) >= 1500);
  CHECK(r.get("STATUS") == "2/2 workers ready, generation 0");
  CHECK(d->wait_log("2/2 workers ready, generation 0"));

  // The summary went out before, while the workers were starting.
  bool saw_starting_status = false;
  for (std::size_t i = 0; i < *ready; ++i) {
    CHECK_FALSE(msgs[i].has("READY=1"));
    if (msgs[i].get("STATUS") == "0/2 workers ready, generation 0") saw_starting_status = true;
  }
  CHECK(saw_starting_status);
  for (const auto& m : msgs)
    if (auto status = m.get("STATUS")) CHECK(status->find("workers ready") != std::string::npos);
  CHECK(systemd.count("READY=1") == 1);
  CHECK(systemd.count("WATCHDOG=1") == 0);  // no WATCHDOG_USEC, no pings

  // And the workers do answer now.
  CHECK(distinct_workers(port, 2).size() == 2);
  check_all_from_master(systemd, d->pid());

  d->signal(SIGTERM);
  CHECK(d->wait_exit() == 0);
  CHECK(no_process_left(d->pid()));
}

TEST_CASE("a reload sends RELOADING=1 with MONOTONIC_USEC= then READY=1 once the new workers are ready",
          "[systemd]") {
  const int port = free_port();
  FakeSystemd systemd;
  DemoConfig config{.address = local_address(port), .count = 2, .ready = "notify",
                    .worker = "env = { APP_RELEASE = \"1\" }\n"};
  auto d = start_daemon(toml(config), {{"NOTIFY_SOCKET", systemd.path()}, {"WATCHDOG_USEC", std::nullopt}});
  const auto first_ready = systemd.wait_for("READY=1");
  REQUIRE(first_ready);

  // The new workers take 1000 ms to send READY=1, and carry a new environment.
  config.args = {"--ready-delay-ms", "1000"};
  config.worker = "env = { APP_RELEASE = \"2\" }\n";
  d->dir().write("app.toml", toml(config));
  const auto before_hup = monotonic_usec();
  const auto hup_at = Clock::now();
  d->signal(SIGHUP);

  const auto reloading = systemd.wait_for("RELOADING=1", *first_ready + 1);
  REQUIRE(reloading);
  const auto done = systemd.wait_for("READY=1", *reloading + 1);
  REQUIRE(done);
  const auto msgs = systemd.messages();
  const Datagram& rl = msgs[*reloading];
  const auto after_reloading = monotonic_usec();

  // MONOTONIC_USEC= rides in the same message as RELOADING=1 and names the time the
  // reload started, on CLOCK_MONOTONIC.
  const auto usec = rl.get("MONOTONIC_USEC");
  REQUIRE(usec);
  const unsigned long long when = std::stoull(*usec);
  CHECK(when >= before_hup);
  CHECK(when <= after_reloading);

  // READY=1 again only once the new workers are ready: at least their 1000 ms later.
  CHECK(ms_between(hup_at, msgs[*done].at) >= 1000);
  CHECK(ms_between(rl.at, msgs[*done].at) >= 900);  // the master reads the clock a little before sending
  CHECK(d->wait_log("reload done"));
  const auto envs = worker_envs(port, 2);
  REQUIRE(envs.size() == 2);
  for (const auto& env : envs) {
    CHECK(env["env"]["APP_RELEASE"] == "2");
    CHECK(env["env"]["PREFORK_GENERATION"] == "1");
  }
  // The summary follows the new generation.
  CHECK(systemd.wait_for("STATUS=2/2 workers ready, generation 1", *reloading + 1));
  CHECK(systemd.count("RELOADING=1") == 1);
  CHECK(systemd.count("READY=1") == 2);
  check_all_from_master(systemd, d->pid());

  d->signal(SIGTERM);
  CHECK(d->wait_exit() == 0);
  CHECK(no_process_left(d->pid()));
}

TEST_CASE("SIGTERM makes the master send STOPPING=1", "[systemd]") {
  const int port = free_port();
  FakeSystemd systemd;
  auto d = start_daemon(toml({.address = local_address(port), .count = 2}),
                        {{"NOTIFY_SOCKET", systemd.path()}, {"WATCHDOG_USEC", std::nullopt}});
  const auto ready = systemd.wait_for("READY=1");
  REQUIRE(ready);
  REQUIRE(systemd.count("STOPPING=1") == 0);

  d->signal(SIGTERM);
  const auto stopping = systemd.wait_for("STOPPING=1", *ready + 1);
  CHECK(stopping);
  CHECK(d->wait_exit() == 0);
  CHECK(systemd.count("STOPPING=1") == 1);
  CHECK(systemd.count("READY=1") == 1);  // no READY=1 while stopping
  check_all_from_master(systemd, d->pid());
  CHECK(no_process_left(d->pid()));
}

TEST_CASE("with WATCHDOG_USEC the master sends WATCHDOG=1 at half the period", "[systemd]") {
  const int port = free_port();
  FakeSystemd systemd;
  // WATCHDOG_PID would name the master, whose pid is known only after fork; unset, it
  // means "this process" to sd_watchdog_enabled.
  auto d = start_daemon(toml({.address = local_address(port), .count = 2}),
                        {{"NOTIFY_SOCKET", systemd.path()}, {"WATCHDOG_USEC", "400000"}, {"WATCHDOG_PID", std::nullopt}});
  REQUIRE(systemd.wait_for("READY=1"));
  const auto first = systemd.wait_for("WATCHDOG=1");
  REQUIRE(first);

  // Watch the pings for a 2 s window: every 200 ms, so about 10. A busy machine may delay
  // a timer, never run it early: at most 2000/200 + 1, and far more than 2.
  const int at_start = systemd.count("WATCHDOG=1");
  std::this_thread::sleep_for(2s);  // measuring a rate over a fixed window
  const int pings = systemd.count("WATCHDOG=1") - at_start;
  CHECK(pings >= 4);
  CHECK(pings <= 11);

  // No two pings closer than the half period allows (some slack for scheduling).
  const auto msgs = systemd.messages();
  std::optional<Clock::time_point> last;
  for (const auto& m : msgs) {
    if (!m.has("WATCHDOG=1")) continue;
    if (last) CHECK(ms_between(*last, m.at) >= 100);
    last = m.at;
  }
  check_all_from_master(systemd, d->pid());

  d->signal(SIGTERM);
  CHECK(d->wait_exit() == 0);
  CHECK(no_process_left(d->pid()));
}

TEST_CASE("a WATCHDOG_PID that names another process means no watchdog for the master", "[systemd]") {
  const int port = free_port();
  FakeSystemd systemd;
  auto d = start_daemon(toml({.address = local_address(port), .count = 1}),
                        {{"NOTIFY_SOCKET", systemd.path()},
                         {"WATCHDOG_USEC", "400000"},
                         {"WATCHDOG_PID", std::to_string(::getpid())}});
  REQUIRE(systemd.wait_for("READY=1"));
  // Two whole would-be periods and more: a ping every 200 ms would show here.
  std::this_thread::sleep_for(1500ms);  // checking that something does NOT happen over a window
  CHECK(systemd.count("WATCHDOG=1") == 0);

  d->signal(SIGTERM);
  CHECK(d->wait_exit() == 0);
  CHECK(no_process_left(d->pid()));
}

TEST_CASE("workers inherit neither the master's NOTIFY_SOCKET nor its WATCHDOG_ variables", "[systemd]") {
  const int port = free_port();
  FakeSystemd systemd;
  const EnvChanges env{{"NOTIFY_SOCKET", systemd.path()}, {"WATCHDOG_USEC", "400000"}, {"WATCHDOG_PID", std::nullopt}};

  SECTION("ready = \"notify\": NOTIFY_SOCKET is the master's own socket for the worker's run") {
    auto d = start_daemon(toml({.address = local_address(port), .count = 2, .ready = "notify"}), env);
    REQUIRE(systemd.wait_for("READY=1"));
    const auto envs = worker_envs(port, 2);
    REQUIRE(envs.size() == 2);
    const std::string own = "@preforkd/" + std::to_string(d->pid()) + "/notify/";
    std::set<std::string> sockets;
    for (const auto& w : envs) {
      INFO(w.dump());
      REQUIRE(w["env"].contains("NOTIFY_SOCKET"));
      const std::string address = w["env"]["NOTIFY_SOCKET"].get<std::string>();
      CHECK(address.starts_with(own + w["slot"].get<std::string>() + "."));
      sockets.insert(address);
      CHECK_FALSE(w["env"].contains("WATCHDOG_USEC"));
      CHECK_FALSE(w["env"].contains("WATCHDOG_PID"));
    }
    CHECK(sockets.size() == 2);  // one per worker
    check_all_from_master(systemd, d->pid());
    d->signal(SIGTERM);
    CHECK(d->wait_exit() == 0);
    CHECK(no_process_left(d->pid()));
  }

  SECTION("ready = \"immediate\": no NOTIFY_SOCKET at all") {
    auto d = start_daemon(toml({.address = local_address(port), .count = 2, .ready = "immediate"}), env);
    REQUIRE(systemd.wait_for("READY=1"));
    const auto envs = worker_envs(port, 2);
    REQUIRE(envs.size() == 2);
    for (const auto& w : envs) {
      INFO(w.dump());
      CHECK_FALSE(w["env"].contains("NOTIFY_SOCKET"));
      CHECK_FALSE(w["env"].contains("WATCHDOG_USEC"));
      CHECK_FALSE(w["env"].contains("WATCHDOG_PID"));
    }
    check_all_from_master(systemd, d->pid());
    d->signal(SIGTERM);
    CHECK(d->wait_exit() == 0);
    CHECK(no_process_left(d->pid()));
  }
}
