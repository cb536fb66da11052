// recycle: 8 demo workers with max_lifetime = "2s" (ready = "notify") recycled under a
// fresh-connection load: 4 client threads, a fresh connection per request (2 s timeout),
// until 24 recycles (every worker three times over) are done. Every request that is not
// answered is a failure; the target is 0, since each recycle starts the replacement on the
// slot's own socket and stops the old worker only once the new one is ready.

#include <cstdio>
#include <thread>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr int kWorkers = 8;
constexpr int kRecycles = 24;
constexpr int kClientThreads = 4;

}  // namespace

void recycle() {
  Setup setup;
  setup.command = {demo_bin()};
  setup.count = kWorkers;
  setup.ready = "notify";
  setup.worker_extra = "max_lifetime = \"2s\"\nmemory_sample_interval = \"250ms\"\n";
  Preforkd daemon(setup);
  daemon.wait_ready();

  const std::int64_t start = mono_ns();
  LoadClient load(daemon.port(), kClientThreads, 2s);
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (daemon.log().count_lines("): recycle done") < kRecycles && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  const LoadStats stats = load.stop();
  const double seconds = static_cast<double>(mono_ns() - start) / 1e9;
  const int done = daemon.log().count_lines("): recycle done");
  const int failed_recycles = daemon.log().count_lines("): recycle failed");
  std::printf("  %d demo workers, max_lifetime = \"2s\" (+-10 %%), max_surge = 1; %d client threads\n", kWorkers,
              kClientThreads);
  report("recycles done", std::to_string(done) + " in " + fmt_ms(seconds * 1000), std::to_string(kRecycles));
  report("recycles failed", std::to_string(failed_recycles), "0");
  print_outcomes("client during the recycles", stats);
  report("requests answered during the recycles", std::to_string(stats.answered));
  report("failed requests during the recycles", std::to_string(stats.failed()), "0");
}

}  // namespace bench
