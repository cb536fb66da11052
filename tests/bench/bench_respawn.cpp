// respawn: how long a slot is empty after its worker is SIGKILLed, with worker cgroups and
// without, side by side in one run.
//
// 8 bench_worker fixtures (ready = "immediate") report "<pid> <slot> <ns>" from the top of
// main(). T0 is CLOCK_MONOTONIC just before kill(pid, SIGKILL), T1 the timestamp in the
// datagram of the slot's next pid, so T1 - T0 covers the master noticing the death
// (SIGCHLD), reaping, deciding, the worker's cgroup (when on), fork, exec, the dynamic
// loader and libc start-up.
//
// Each round runs one preforkd with `worker_cgroups = "off"` and one with "on" (which fails
// to start where no worker cgroup can be made: not root, no writable cgroup2), in
// alternating order, 40 kills each; the rows are the rounds, then all kills pooled, and the
// ratio of the p50s (the target: at most 1.3).
//
// The restart policy restarts a healthy worker's first crash at once, but backs off when
// it crashes again within its healthy window (1 s). The kills go round-robin with at
// least 1.2 s between two kills of the same slot, so every kill should be answered at
// once; a kill answered after more than 50 ms is counted as backed off, apart.
//
// For scale, baselines: the benchmark itself starts the same fixture 50 times with fork +
// exec (as the master does) and 50 times with posix_spawn (T0 just before the call, T1
// from the datagram): the floor any supervisor pays on this machine.

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr int kWorkers = 8;
constexpr int kKills = 40;  // per preforkd, round-robin: 5 per worker
constexpr int kRounds = 3;
constexpr std::int64_t kMinAgeNs = 1'200'000'000;  // > the 1 s healthy window
constexpr std::int64_t kSpacingNs = kMinAgeNs / kWorkers;
constexpr double kBackedOffMs = 50;  // backoff_initial is 100 ms, jitter at least 0.8
constexpr double kTargetRatio = 1.3;

constexpr int kBaselineSpawns = 50;

// The start datagram of `pid`.
StartMessage start_of(StartListener& starts, pid_t pid) {
  for (;;) {
    const auto m = starts.receive(10s);
    if (!m) throw Failure("the baseline bench_worker sent no start datagram within 10 s");
    if (m->pid == pid) return *m;
  }
}

// fork + exec + the fixture's start, done by the benchmark itself as the master does it
// (fork, then exec): {fork -> execve, fork -> main()} in ms.
std::pair<std::vector<double>, std::vector<double>> fork_baseline(StartListener& starts) {
  std::vector<double> to_exec, total;
  for (int i = 0; i < kBaselineSpawns; ++i) {
    Child child(Child::Options{{bench_worker_bin()}, {"BENCH_SOCKET=" + starts.path()}, -1, -2});
    const StartMessage m = start_of(starts, child.pid());
    to_exec.push_back(ns_to_ms(child.exec_ns() - child.fork_ns()));
    total.push_back(ns_to_ms(m.ns - child.fork_ns()));
    std::this_thread::sleep_for(20ms);
  }
  return {to_exec, total};
}

// The same with posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK), no page-table copy).
std::vector<double> posix_spawn_baseline(StartListener& starts) {
  const std::string path = bench_worker_bin(), env_socket = "BENCH_SOCKET=" + starts.path();
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  char* envp[] = {const_cast<char*>(env_socket.c_str()), nullptr};
  std::vector<double> total;
  for (int i = 0; i < kBaselineSpawns; ++i) {
    pid_t pid = -1;
    const std::int64_t t0 = mono_ns();
    if (const int err = ::posix_spawn(&pid, path.c_str(), nullptr, nullptr, argv, envp); err != 0)
      throw Failure("posix_spawn " + path + " failed: " + std::strerror(err));
    struct Reaper {
      pid_t pid;
      ~Reaper() {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    } reaper{pid};
    total.push_back(ns_to_ms(start_of(starts, pid).ns - t0));
    std::this_thread::sleep_for(20ms);
  }
  return total;
}

}  // namespace

namespace {

// The kills answered at once (ms) and those answered after a backoff, of one preforkd.
struct Series {
  std::vector<double> prompt_ms, backed_off_ms;
  std::string cgroup;  // slot 0's worker cgroup ("" without)
};

Series kill_series(const std::string& worker_cgroups) {
  TempDir dir;
  StartListener starts(dir.file("starts.sock"));
  Setup setup;
  setup.command = {bench_worker_bin()};
  setup.count = kWorkers;
  setup.ready = "immediate";
  setup.env = {{"BENCH_SOCKET", starts.path()}};
  setup.daemon_extra = "worker_cgroups = \"" + worker_cgroups + "\"\n";
  Preforkd daemon(setup);

  std::map<int, StartMessage> current;  // slot -> its worker
  while (current.size() < kWorkers) {
    const auto m = starts.receive(10s);
    if (!m)
      daemon.fail("only " + std::to_string(current.size()) + " of " + std::to_string(kWorkers) + " workers started");
    current[m->slot] = *m;
  }
  daemon.wait_ready();
  Series out;
  const auto status = control_request(daemon.control_socket(), R"({"cmd":"status"})", 5s);
  if (status.contains("workers") && !status["workers"].empty())
    out.cgroup = status["workers"][0].value("cgroup", std::string());
  if ((worker_cgroups == "on") == out.cgroup.empty())
    daemon.fail("worker_cgroups = \"" + worker_cgroups + "\", but slot 0's cgroup is '" + out.cgroup + "'");

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
      if (!m)
        daemon.fail("slot " + std::to_string(slot) + " got no new worker within 10 s after kill " + std::to_string(k));
      current[m->slot] = *m;  // another slot restarted (should not happen): keep track
      if (m->slot == slot && m->pid != victim.pid) next = m;
    }
    const double ms = ns_to_ms(next->ns - t0);
    (ms > kBackedOffMs ? out.backed_off_ms : out.prompt_ms).push_back(ms);
  }
  return out;
}

std::string p50_p90(const std::vector<double>& ms) {
  return fmt_ms(percentile(ms, 50)) + " / " + fmt_ms(percentile(ms, 90));
}

std::string ratio(double on, double off) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", on / off);
  return buf;
}

}  // namespace

void respawn() {
  std::printf("  %d bench_worker fixtures, ready = \"immediate\", %d SIGKILLs round-robin per preforkd (each worker up\n"
              "  >= 1.2 s); each round one preforkd with worker_cgroups = \"off\" and one with \"on\"\n",
              kWorkers, kKills);
  std::printf("  %-7s  %-26s  %-26s  %s\n", "round", "cgroups off: p50 / p90", "cgroups on: p50 / p90", "p50 on/off");
  Series off_all, on_all;
  for (int round = 1; round <= kRounds; ++round) {
    Series off, on;
    // Alternating order, so that a drift of the machine's load favours neither.
    if (round % 2 == 1) {
      off = kill_series("off");
      on = kill_series("on");
    } else {
      on = kill_series("on");
      off = kill_series("off");
    }
    if (round == 1) std::printf("  (worker cgroups under %s)\n", on.cgroup.substr(0, on.cgroup.rfind('/')).c_str());
    std::printf("  %-7d  %-26s  %-26s  %s\n", round, p50_p90(off.prompt_ms).c_str(), p50_p90(on.prompt_ms).c_str(),
                ratio(percentile(on.prompt_ms, 50), percentile(off.prompt_ms, 50)).c_str());
    std::fflush(stdout);
    for (auto [from, to] : {std::pair{&off, &off_all}, std::pair{&on, &on_all}}) {
      to->prompt_ms.insert(to->prompt_ms.end(), from->prompt_ms.begin(), from->prompt_ms.end());
      to->backed_off_ms.insert(to->backed_off_ms.end(), from->backed_off_ms.begin(), from->backed_off_ms.end());
    }
  }
  const int total = kRounds * kKills;
  report("kills answered at once, off / on", std::to_string(off_all.prompt_ms.size()) + "/" + std::to_string(total) +
                                                 " / " + std::to_string(on_all.prompt_ms.size()) + "/" +
                                                 std::to_string(total));
  report("respawn, cgroups off: p50 / p90 / p99", p50_p90(off_all.prompt_ms) + " / " + fmt_ms(percentile(off_all.prompt_ms, 99)));
  report("respawn, cgroups on: p50 / p90 / p99", p50_p90(on_all.prompt_ms) + " / " + fmt_ms(percentile(on_all.prompt_ms, 99)));
  report("respawn p50, on / off", ratio(percentile(on_all.prompt_ms, 50), percentile(off_all.prompt_ms, 50)),
         "<= " + ratio(kTargetRatio, 1));
  for (auto [name, series] : {std::pair{"off", &off_all}, std::pair{"on", &on_all}})
    if (!series->backed_off_ms.empty())
      report(std::string("kills answered after a backoff (> 50 ms), ") + name,
             std::to_string(series->backed_off_ms.size()) + ", median " + fmt_ms(median(series->backed_off_ms)));

  TempDir dir;
  StartListener starts(dir.file("starts.sock"));
  const auto [to_exec, total_ms] = fork_baseline(starts);
  const auto spawned = posix_spawn_baseline(starts);
  std::printf("  baseline: this benchmark starts the fixture itself, %d times each way\n", kBaselineSpawns);
  report("baseline fork+exec -> main(), p50 / p99", fmt_ms(median(total_ms)) + " / " + fmt_ms(percentile(total_ms, 99)));
  report("  of which fork -> execve, p50", fmt_ms(median(to_exec)));
  report("baseline posix_spawn -> main(), p50 / p99",
         fmt_ms(median(spawned)) + " / " + fmt_ms(percentile(spawned, 99)));
}

}  // namespace bench
