// preforkd_bench: the benchmarks of preforkd (issues 2 and 3). It prints numbers next to
// their targets and asserts nothing about speed. Run all of them (about 3 minutes on
// 2 cores), or some by name:  preforkd_bench respawn churn
//
// Only 127.0.0.1 is used. Every process a benchmark starts is killed and reaped when it
// ends, also when it fails.

#include <sys/prctl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace {

struct Entry {
  const char* name;
  const char* what;
  void (*run)();
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> all = {
      {"respawn", "SIGKILL of a worker to its replacement's main(), worker cgroups off and on side by side, 3 rounds",
       bench::respawn},
      {"startup", "time to start 256 workers", bench::startup},
      {"rss", "master RSS with 8 and with 256 workers", bench::rss},
      {"throughput", "demo requests/s through preforkd vs. the same 2 workers alone (wrk)", bench::throughput},
      {"churn", "fresh-connection client while workers are SIGKILLed: preforkd, pm2 (when installed) and the Fiber way", bench::churn},
      {"status", "control socket status request time with 256 workers", bench::status},
      {"reload", "rolling reload of 8 demo workers: time, and failed requests during 20 reloads", bench::reload},
      {"soak", "restarts, scale cycles, good/bad reloads, requests: master fds, RssAnon, processes (not in the default run)",
       bench::soak},
      {"balance", "hash, shared and load-balanced listeners: sync and event-loop workers under wrk", bench::balance},
      {"metrics", "GET /metrics with 256 workers: scrape latency p50/p99, master CPU at 10 scrapes/s", bench::metrics},
      {"upgrade", "in-place upgrade: time with 8 and 256 workers, failed requests during 20 upgrades", bench::upgrade},
      {"recycle", "max_lifetime recycling of 8 demo workers under a fresh-connection load: failed requests", bench::recycle},
      {"pool",
       "adaptive pool beside uWSGI's cheaper under a 1 -> 8 -> 1 client step; ondemand from 0 (not in the default run)",
       bench::pool_bench},
  };
  return all;
}

// The machine's other load, printed beside the results: the numbers mean little when
// other processes compete for the CPUs.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five;
  in >> one >> five;
  return one + " (1 min), " + five + " (5 min)";
}

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: preforkd_bench [--list] [--restarts=N --scale-cycles=N --reloads=N --requests=N] [NAME...]\n\n"
               "Runs the named benchmarks (all but soak and pool when none is named); the --flags size the soak:\n");
  for (const auto& e : entries()) std::fprintf(to, "  %-11s %s\n", e.name, e.what);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<const Entry*> chosen;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "--list") {
      usage(stdout);
      return 0;
    }
    if (arg.starts_with("--") && arg.find('=') != std::string::npos) {
      const std::string key = arg.substr(2, arg.find('=') - 2);
      const int value = std::atoi(arg.c_str() + arg.find('=') + 1);
      int* field = key == "restarts"       ? &bench::soak_sizes.restarts
                   : key == "scale-cycles" ? &bench::soak_sizes.scale_cycles
                   : key == "reloads"      ? &bench::soak_sizes.reloads
                   : key == "requests"     ? &bench::soak_sizes.requests
                                           : nullptr;
      if (field == nullptr || value < 0) {
        std::fprintf(stderr, "preforkd_bench: unknown flag '%s'\n\n", arg.c_str());
        usage(stderr);
        return 2;
      }
      *field = value;
      continue;
    }
    const Entry* found = nullptr;
    for (const auto& e : entries())
      if (arg == e.name) found = &e;
    if (found == nullptr) {
      std::fprintf(stderr, "preforkd_bench: unknown benchmark '%s'\n\n", arg.c_str());
      usage(stderr);
      return 2;
    }
    chosen.push_back(found);
  }
  if (chosen.empty())
    for (const auto& e : entries())
      if (std::strcmp(e.name, "soak") != 0 && std::strcmp(e.name, "pool") != 0) chosen.push_back(&e);

  // Orphans (workers of a preforkd that was killed) come back to us, to be reaped.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);

  std::printf("preforkd_bench: %u CPUs, load average %s\n", std::thread::hardware_concurrency(),
              load_average().c_str());
  int failures = 0;
  const std::int64_t start = bench::mono_ns();
  for (const Entry* e : chosen) {
    std::printf("\n== %s: %s\n", e->name, e->what);
    std::fflush(stdout);
    const std::int64_t t0 = bench::mono_ns();
    try {
      e->run();
    } catch (const std::exception& ex) {
      ++failures;
      std::printf("  FAILED: %s\n", ex.what());
    }
    if (const int left = bench::kill_and_reap_all_children(); left > 0)
      std::printf("  (killed %d leftover process%s)\n", left, left == 1 ? "" : "es");
    std::printf("  [%s took %.1f s; load average now %s]\n", e->name, static_cast<double>(bench::mono_ns() - t0) / 1e9,
                load_average().c_str());
    std::fflush(stdout);
  }
  std::printf("\nall done in %.1f s%s\n", static_cast<double>(bench::mono_ns() - start) / 1e9,
              failures ? (", " + std::to_string(failures) + " benchmark(s) failed").c_str() : "");
  return failures ? 1 : 0;
}
