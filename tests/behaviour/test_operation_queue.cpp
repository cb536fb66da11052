// Operations wait their turn (daemon/operations, core/operation_queue): a reload, restart,
// scale or recycle that arrives while another runs is queued behind it (or shares a
// waiting reload's result) and then succeeds; none fails because another happened to run.

#include <catch2/catch.hpp>
#include <csignal>
#include <future>
#include <regex>

#include "control_helpers.hpp"

using namespace bt;

namespace {

// Demo workers whose environment carries DEMO_VERSION = `version`: changing it makes a
// reload roll every worker. Each new worker takes a while to get ready.
DemoConfig versioned(int port, int count, const std::string& version, const std::string& more = "") {
  return {.address = local_address(port),
          .count = count,
          .args = {"--ready-delay-ms", "300"},
          .ready = "notify",
          .worker = "ready_timeout = \"20s\"\nenv = { DEMO_VERSION = " + toml_string(version) + " }\n" + more};
}

std::string show(const CtlResult& r) {
  return "exit " + std::to_string(r.exit_code) + "; stdout: " + r.out + "; stderr: " + r.err;
}

// Waits for every reply: each must be ok (checked one by one, with what it said); how many were not.
int failures(std::vector<std::future<CtlResult>>& replies) {
  int failed = 0;
  for (auto& f : replies) {
    const CtlResult r = f.get();
    INFO(show(r));
    CHECK(r.exit_code == 0);
    failed += r.exit_code == 0 ? 0 : 1;
  }
  return failed;
}

// Every slot of 0..count-1 serves DEMO_VERSION = `version`.
bool all_serve(int port, int count, const std::string& version) {
  const auto envs = env_of_workers(port, count);
  if (static_cast<int>(envs.size()) != count) return false;
  for (const auto& e : envs)
    if (e["env"].value("DEMO_VERSION", "") != version) return false;
  return true;
}

}  // namespace

TEST_CASE("operations: 30 reloads fired together with a scale down all succeed", "[operations]") {
  const int port = free_port();
  Daemon d(toml(versioned(port, 4, "1")));
  const auto first = wait_workers_ready(d, 4);
  REQUIRE(first);
  const std::vector<pid_t> initial = pids_in(*first);

  // The new config says 3 workers too, and the scale down is to 3: whatever the order in
  // which they arrive, they end at 3.
  rewrite_config(d, toml(versioned(port, 3, "2")));
  std::vector<std::future<CtlResult>> replies;
  for (int i = 0; i < 30; ++i) {
    replies.push_back(std::async(std::launch::async, [&d] { return ctl(d, {"reload"}); }));
    if (i == 5) replies.push_back(std::async(std::launch::async, [&d] { return ctl(d, {"scale", "3"}); }));
  }
  const int failed = failures(replies);
  INFO(d.log());
  CHECK(failed == 0);
  CHECK(d.count_log("busy") == 0);
  CHECK(d.count_log("rolled back") == 0);
  const auto after = wait_workers_ready(d, 3);
  REQUIRE(after);
  const std::vector<pid_t> now = pids_in(*after);
  REQUIRE(now.size() == 3);
  for (std::size_t slot = 0; slot < now.size(); ++slot) CHECK(now[slot] != initial[slot]);
  CHECK(all_serve(port, 3, "2"));
  CHECK(wait_until([&] { return static_cast<int>(processes_of_master(d.pid()).size()) == 3; }));
  stop_cleanly(d);
}

TEST_CASE("operations: a SIGHUP storm with config edits never fails with busy", "[operations]") {
  const int port = free_port();
  Daemon d(toml(versioned(port, 2, "1")));
  REQUIRE(wait_workers_ready(d, 2));
  constexpr int last = 12;
  for (int v = 2; v <= last; ++v) {
    rewrite_config(d, toml(versioned(port, 2, std::to_string(v))));
    d.signal(SIGHUP);
  }
  // SIGHUPs sent close together may arrive as one: each one received ends in one result.
  const bool all_done = wait_until(
      [&] {
        const int received = d.count_log("received SIGHUP");
        return received > 0 && d.count_log("reload done") + d.count_log("reload failed") == received;
      },
      120s);
  INFO(d.log());
  CHECK(all_done);
  CHECK(d.count_log("reload failed") == 0);
  CHECK(d.count_log("busy") == 0);
  // The last config wins.
  REQUIRE(wait_workers_ready(d, 2));
  CHECK(wait_until([&] { return all_serve(port, 2, std::to_string(last)); }, 60s));
  stop_cleanly(d);
}

TEST_CASE("operations: a scale during a rolling restart waits its turn and both succeed", "[operations]") {
  const int port = free_port();
  DemoConfig c = versioned(port, 2, "1");
  c.args = {"--ready-delay-ms", "1500"};
  Daemon d(toml(c));
  const auto first = wait_workers_ready(d, 2);
  REQUIRE(first);
  const std::vector<pid_t> initial = pids_in(*first);

  auto restart = std::async(std::launch::async, [&d] { return ctl(d, {"restart"}); });
  REQUIRE(d.wait_log("rolling update to generation"));
  const CtlResult scaled = ctl(d, {"scale", "+1"});
  const CtlResult restarted = restart.get();
  INFO(d.log());
  INFO("scale: " << show(scaled));
  INFO("restart: " << show(restarted));
  CHECK(restarted.exit_code == 0);
  CHECK(scaled.exit_code == 0);
  CHECK(scaled.out.find("from 2 to 3") != std::string::npos);
  CHECK(d.count_log("scale waits for the restart in progress") == 1);
  const auto after = wait_workers_ready(d, 3);
  REQUIRE(after);
  const std::vector<pid_t> now = pids_in(*after);
  REQUIRE(now.size() == 3);
  CHECK(now[0] != initial[0]);
  CHECK(now[1] != initial[1]);
  stop_cleanly(d);
}

TEST_CASE("operations: reloads that arrive while a recycle runs wait for it and all succeed", "[operations]") {
  const int port = free_port();
  // Each recycle takes its new worker's 1.5 s to get ready: the reloads arrive during one.
  DemoConfig c = versioned(port, 2, "1", "max_lifetime = \"2s\"\n");
  c.args = {"--ready-delay-ms", "1500"};
  Daemon d(toml(c));
  REQUIRE(wait_workers_ready(d, 2));
  REQUIRE(d.wait_log("recycled: lifetime", 60s));
  DemoConfig next = c;
  next.worker = "ready_timeout = \"20s\"\nenv = { DEMO_VERSION = \"2\" }\nmax_lifetime = \"2s\"\n";
  rewrite_config(d, toml(next));
  std::vector<std::future<CtlResult>> replies;
  for (int i = 0; i < 5; ++i) replies.push_back(std::async(std::launch::async, [&d] { return ctl(d, {"reload"}); }));
  const int failed = failures(replies);
  INFO(d.log());
  CHECK(failed == 0);
  CHECK(d.count_log("reload failed") == 0);
  CHECK(d.count_log("reload waits for the recycle in progress") >= 1);
  REQUIRE(wait_workers_ready(d, 2));
  CHECK(wait_until([&] { return all_serve(port, 2, "2"); }, 60s));
  stop_cleanly(d);
}
