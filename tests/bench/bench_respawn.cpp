// respawn: how long a slot is empty after its worker is SIGKILLed.
//
// 16 bench_worker fixtures (ready = "immediate") report "<pid> <slot> <ns>" from the top of
// main(). T0 is CLOCK_MONOTONIC just before kill(pid, SIGKILL), T1 the timestamp in the
// datagram of the slot's next pid, so T1 - T0 covers the master noticing the death
// (SIGCHLD), reaping, deciding, fork, exec, the dynamic loader and libc start-up.
//
// The restart policy restarts a healthy worker's first crash at once, but backs off when
// it crashes again within its healthy window (1 s). The kills go round-robin with at
// least 1.2 s between two kills of the same slot, so every kill should be answered at
// once; a kill answered after more than 50 ms is counted as backed off, apart.
//
// For scale, a baseline: the benchmark itself forks and execs the same fixture 50 times
// (T0 just before fork, T1 from the datagram), which is the floor any supervisor pays on
// this machine; exec (page tables, the dynamic loader) dominates it on small VMs.

#include "bench_common.hpp"
#include "benchmarks.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>

namespace bench {

namespace {

constexpr int kWorkers = 16;
constexpr int kKills = 200;
constexpr std::int64_t kMinAgeNs = 1'200'000'000;  // > the 1 s healthy window
constexpr std::int64_t kSpacingNs = kMinAgeNs / kWorkers;
constexpr double kBackedOffMs = 50;  // backoff_initial is 100 ms, jitter at least 0.8

constexpr int kBaselineSpawns = 50;

// fork + exec + the fixture's start, done by the benchmark itself: {fork->exec, total} in ms.
std::pair<std::vector<double>, std::vector<double>> baseline(StartListener& starts) {
  std::vector<double> to_exec, total;
  for (int i = 0; i < kBaselineSpawns; ++i) {
    Child child(Child::Options{{bench_worker_bin()}, {"BENCH_SOCKET=" + starts.path()}, -1, -2});
    std::optional<StartMessage> m;
    while (!m || m->pid != child.pid()) {
      m = starts.receive(10s);
      if (!m) throw Failure("the baseline bench_worker sent no start datagram within 10 s");
    }
    to_exec.push_back(ns_to_ms(child.exec_ns() - child.fork_ns()));
    total.push_back(ns_to_ms(m->ns - child.fork_ns()));
    std::this_thread::sleep_for(20ms);
  }
  return {to_exec, total};
}

}  // namespace

void respawn() {
  TempDir dir;
  StartListener starts(dir.file("starts.sock"));
  Setup setup;
  setup.command = {bench_worker_bin()};
  setup.count = kWorkers;
  setup.ready = "immediate";
  setup.env = {{"BENCH_SOCKET", starts.path()}};
  Preforkd daemon(setup);

  std::map<int, StartMessage> current;  // slot -> its worker
  while (current.size() < kWorkers) {
    const auto m = starts.receive(10s);
    if (!m) daemon.fail("only " + std::to_string(current.size()) + " of " + std::to_string(kWorkers) + " workers started");
    current[m->slot] = *m;
  }
  daemon.wait_ready();

  std::vector<double> prompt_ms, backed_off_ms;
  std::int64_t last_kill = 0;
  for (int k = 0; k < kKills; ++k) {
    const int slot = k % kWorkers;
    const StartMessage victim = current.at(slot);
    const std::int64_t when = std::max(last_kill + kSpacingNs, victim.ns + kMinAgeNs);
    while (mono_ns() < when) std::this_thread::sleep_for(Ms(1));

    const std::int64_t t0 = mono_ns();
    ::kill(victim.pid, SIGKILL);
    last_kill = t0;
    std::optional<StartMessage> next;
    while (!next) {
      const auto m = starts.receive(10s);
      if (!m) daemon.fail("slot " + std::to_string(slot) + " got no new worker within 10 s after kill " + std::to_string(k));
      current[m->slot] = *m;  // another slot restarted (should not happen): keep track
      if (m->slot == slot && m->pid != victim.pid) next = m;
    }
    const double ms = ns_to_ms(next->ns - t0);
    (ms > kBackedOffMs ? backed_off_ms : prompt_ms).push_back(ms);
  }

  std::printf("  %d bench_worker fixtures, ready = \"immediate\", %d SIGKILLs round-robin (each worker up >= 1.2 s)\n",
              kWorkers, kKills);
  report("kills answered at once", std::to_string(prompt_ms.size()) + "/" + std::to_string(kKills));
  report("respawn latency p50", fmt_ms(percentile(prompt_ms, 50)), "p50 < 2 ms");
  report("respawn latency p99", fmt_ms(percentile(prompt_ms, 99)));
  report("respawn latency min / max",
         fmt_ms(percentile(prompt_ms, 0)) + " / " + fmt_ms(percentile(prompt_ms, 100)));
  if (!backed_off_ms.empty())
    report("kills answered after a backoff (> 50 ms)",
           std::to_string(backed_off_ms.size()) + ", median " + fmt_ms(median(backed_off_ms)));

  const auto [to_exec, total] = baseline(starts);
  std::printf("  baseline: this benchmark forks and execs the fixture itself, %d times\n", kBaselineSpawns);
  report("baseline fork -> fixture's main(), p50", fmt_ms(median(total)));
  report("baseline fork -> fixture's main(), p99", fmt_ms(percentile(total, 99)));
  report("baseline of which fork -> execve, p50", fmt_ms(median(to_exec)));
}

}  // namespace bench
