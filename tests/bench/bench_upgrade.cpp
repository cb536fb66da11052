// upgrade: in-place upgrades of the master (preforkctl upgrade) to the same binary.
//
// The time of one upgrade, from the request on the control socket to the reply the new
// image writes on the same connection, with 8 and with 256 workers (bench_worker
// fixtures, median of 5 each); then 20 upgrades in a row with 8 demo workers while 4
// client threads open a fresh connection per request (2 s timeout): every request not
// answered is a failure. Worker pids before and after are compared: an upgrade keeps them.

#include <cstdio>
#include <set>
#include <thread>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr int kTimedUpgrades = 5;
constexpr int kLoadedUpgrades = 20;
constexpr int kClientThreads = 4;

std::set<pid_t> worker_pids(const Preforkd& daemon) {
  const auto reply = control_request(daemon.control_socket(), R"({"cmd":"status"})", 5s);
  std::set<pid_t> pids;
  for (const auto& w : reply.at("workers")) pids.insert(json_int(w, "pid", 0));
  return pids;
}

double upgrade_once(Preforkd& daemon, int n) {
  double ms = 0;
  const auto reply = control_request(daemon.control_socket(), R"({"cmd":"upgrade"})", 60s, &ms);
  if (!reply.value("ok", false)) daemon.fail("upgrade " + std::to_string(n) + " failed: " + reply.dump());
  return ms;
}

void timed(int workers) {
  Setup setup;
  setup.command = {bench_worker_bin()};
  setup.count = workers;
  Preforkd daemon(setup);
  daemon.wait_ready(60s);
  const std::set<pid_t> before = worker_pids(daemon);
  std::vector<double> ms;
  for (int i = 0; i < kTimedUpgrades; ++i) ms.push_back(upgrade_once(daemon, i + 1));
  const bool kept = worker_pids(daemon) == before;
  report("one upgrade, " + std::to_string(workers) + " workers, median", fmt_ms(median(ms)));
  report("one upgrade, " + std::to_string(workers) + " workers, min / max",
         fmt_ms(percentile(ms, 0)) + " / " + fmt_ms(percentile(ms, 100)));
  report("worker pids kept over " + std::to_string(kTimedUpgrades) + " upgrades", kept ? "yes" : "NO", "yes");
}

}  // namespace

void upgrade() {
  timed(8);
  timed(256);

  Setup setup;
  setup.command = {demo_bin()};
  setup.count = 8;
  Preforkd daemon(setup);
  daemon.wait_ready();
  const std::set<pid_t> before = worker_pids(daemon);
  LoadClient load(daemon.port(), kClientThreads, 2s);
  std::this_thread::sleep_for(300ms);
  std::vector<double> ms;
  for (int i = 0; i < kLoadedUpgrades; ++i) ms.push_back(upgrade_once(daemon, i + 1));
  std::this_thread::sleep_for(300ms);
  const LoadStats stats = load.stop();
  std::printf("  %d upgrades in a row, 8 demo workers, under a fresh-connection load\n", kLoadedUpgrades);
  report("upgrade under load, median", fmt_ms(median(ms)));
  report("worker pids kept", worker_pids(daemon) == before ? "yes" : "NO", "yes");
  print_outcomes("client during the 20 upgrades", stats);
  report("failed requests during 20 upgrades", std::to_string(stats.failed()), "0");
}

}  // namespace bench
