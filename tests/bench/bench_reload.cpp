// reload: rolling reloads of 8 demo workers (ready = "notify": the demo sends READY=1).
//
// Each reload changes an environment variable in the config file, which rolls a new
// generation slot by slot, then sends {"cmd":"reload"} on the control socket and times
// it until the reply (the reply comes when the reload is finished). First 5 reloads with
// no traffic, then 20 in a row while 4 client threads open a fresh connection per
// request (2 s timeout) the whole time; every request that is not answered is a failure.

#include <algorithm>
#include <cstdio>
#include <set>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr int kWorkers = 8;
constexpr int kIdleReloads = 5;
constexpr int kLoadedReloads = 20;
constexpr int kClientThreads = 4;

std::set<pid_t> worker_pids(const Preforkd& daemon) {
  const auto reply = control_request(daemon.control_socket(), R"({"cmd":"status"})", 5s);
  std::set<pid_t> pids;
  for (const auto& w : reply.at("workers")) pids.insert(json_int(w, "pid", 0));
  return pids;
}

// One reload with a changed env; its time in ms. Counts it in `all_replaced` when no
// worker pid survived it.
double reload_once(Preforkd& daemon, Setup& setup, int n, int& all_replaced) {
  const std::set<pid_t> before = worker_pids(daemon);
  setup.env["BENCH_RELOAD"] = std::to_string(n);
  daemon.rewrite(setup);
  double ms = 0;
  const auto reply = control_request(daemon.control_socket(), R"({"cmd":"reload"})", 60s, &ms);
  if (!reply.value("ok", false)) daemon.fail("reload " + std::to_string(n) + " failed: " + reply.dump());
  const std::set<pid_t> after = worker_pids(daemon);
  if (std::none_of(after.begin(), after.end(), [&](pid_t p) { return before.count(p) > 0; })) ++all_replaced;
  return ms;
}

void print_times(const std::string& what, const std::vector<double>& ms, const std::string& target = "") {
  report(what + ", median", fmt_ms(median(ms)), target);
  report(what + ", min / max", fmt_ms(percentile(ms, 0)) + " / " + fmt_ms(percentile(ms, 100)));
}

}  // namespace

void reload() {
  Setup setup;
  setup.command = {demo_bin()};
  setup.count = kWorkers;
  setup.ready = "notify";
  setup.env = {{"BENCH_RELOAD", "0"}};
  Preforkd daemon(setup);
  daemon.wait_ready();
  setup = daemon.setup();  // with the port and control socket it picked

  int n = 0, all_replaced = 0;
  std::vector<double> idle_ms;
  for (int i = 0; i < kIdleReloads; ++i) idle_ms.push_back(reload_once(daemon, setup, ++n, all_replaced));
  std::printf("  %d demo workers, ready = \"notify\"; %d reloads without traffic\n", kWorkers, kIdleReloads);
  print_times("rolling reload of 8 workers", idle_ms);

  std::vector<double> loaded_ms;
  LoadClient load(daemon.port(), kClientThreads, 2s);
  std::this_thread::sleep_for(300ms);
  for (int i = 0; i < kLoadedReloads; ++i) loaded_ms.push_back(reload_once(daemon, setup, ++n, all_replaced));
  std::this_thread::sleep_for(300ms);
  const LoadStats stats = load.stop();
  std::printf("  %d reloads in a row under a fresh-connection load\n", kLoadedReloads);
  print_times("rolling reload under load", loaded_ms);
  report("reloads that replaced every worker", std::to_string(all_replaced) + "/" + std::to_string(n));
  print_outcomes("client during the 20 reloads", stats);
  report("failed requests during 20 reloads", std::to_string(stats.failed()), "0");
}

}  // namespace bench
