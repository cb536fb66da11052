// startup: from preforkd's exec to the 256th worker's first instruction in main().
//
// 256 bench_worker fixtures, ready = "immediate". T0 is CLOCK_MONOTONIC read by the forked
// child just before it execs preforkd; the workers' start datagrams give the time the
// last of them started, and the master's log gives the time its "256/256 workers ready"
// line arrived. Three fresh runs.

#include <algorithm>
#include <cstdio>
#include <set>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr int kWorkers = 256;
constexpr int kRuns = 3;

}  // namespace

void startup() {
  std::vector<double> to_last_start, to_ready_line;
  for (int run = 1; run <= kRuns; ++run) {
    TempDir dir;
    StartListener starts(dir.file("starts.sock"));
    Setup setup;
    setup.command = {bench_worker_bin()};
    setup.count = kWorkers;
    setup.ready = "immediate";
    setup.env = {{"BENCH_SOCKET", starts.path()}};
    Preforkd daemon(setup);
    const std::int64_t t0 = daemon.exec_ns();

    std::set<int> slots;
    std::int64_t last = 0;
    while (slots.size() < kWorkers) {
      const auto m = starts.receive(30s);
      if (!m) daemon.fail("only " + std::to_string(slots.size()) + " of 256 workers started within 30 s");
      if (slots.insert(m->slot).second) last = std::max(last, m->ns);
    }
    const std::int64_t ready = daemon.wait_ready(30s);
    to_last_start.push_back(ns_to_ms(last - t0));
    to_ready_line.push_back(ns_to_ms(ready - t0));
    std::printf("  run %d: 256th worker started at %s, \"256/256 workers ready\" logged at %s\n", run,
                fmt_ms(to_last_start.back()).c_str(), fmt_ms(to_ready_line.back()).c_str());
  }
  std::printf(
      "  (ready = \"immediate\" counts a worker ready once it is forked, so the log line may come\n"
      "   before the last worker reaches main())\n");
  report("exec -> 256th worker started (median of 3)", fmt_ms(median(to_last_start)), "< 1 s");
  report("exec -> \"256/256 workers ready\" (median of 3)", fmt_ms(median(to_ready_line)));
}

}  // namespace bench
