// throughput: requests/s of the demo worker through preforkd (count = 2, reuseport
// sockets held by the master) against the same 2 demo workers started without it, each
// binding its own SO_REUSEPORT socket (--listen 127.0.0.1:PORT --reuseport).
//
// wrk -t2 -c64 -d5s (keep-alive) runs against each in turn, 5 rounds, interleaved and in
// alternating order so drift affects both alike. wrk shares the 2 cores with the workers:
// the absolute numbers mean little, the ratio of the medians is the result.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr int kRounds = 5;

// Waits until GET / on `port` is answered.
void wait_answering(int port, const std::string& who) {
  const std::int64_t end = mono_ns() + 10'000'000'000;
  while (http_get(port, 1s) != Outcome::answered) {
    if (mono_ns() > end) throw Failure(who + " does not answer on port " + std::to_string(port));
    std::this_thread::sleep_for(10ms);
  }
}

// Requests/s of one wrk run.
double wrk(const std::string& wrk_bin, int port, const std::string& duration) {
  const auto [status, out] =
      run_capture({wrk_bin, "-t2", "-c64", "-d" + duration, "http://127.0.0.1:" + std::to_string(port) + "/"}, 60s);
  const auto at = out.find("Requests/sec:");
  if (status != 0 || at == std::string::npos) throw Failure("wrk failed:\n" + out);
  for (const char* trouble : {"Socket errors", "Non-2xx"})
    if (const auto t = out.find(trouble); t != std::string::npos)
      std::printf("    wrk on port %d: %s\n", port, out.substr(t, out.find('\n', t) - t).c_str());
  return std::atof(out.c_str() + at + 13);
}

}  // namespace

void throughput() {
  const std::string wrk_bin = find_in_path("wrk");
  if (wrk_bin.empty()) throw Failure("wrk is not installed (`make bench` installs it, or apt-get install wrk)");

  Setup setup;
  setup.command = {demo_bin()};
  setup.count = 2;
  Preforkd daemon(setup);
  daemon.wait_ready();

  const int alone_port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(alone_port);
  std::vector<std::unique_ptr<Child>> alone;
  for (int i = 0; i < 2; ++i)
    alone.push_back(std::make_unique<Child>(Child::Options{
        {demo_bin(), "--listen", address, "--reuseport"}, {"PREFORK_WORKER_ID=" + std::to_string(i)}, -1, -2}));

  wait_answering(daemon.port(), "preforkd's demo workers");
  wait_answering(alone_port, "the demo workers alone");
  std::this_thread::sleep_for(200ms);  // both alone workers have bound by now
  wrk(wrk_bin, daemon.port(), "1s");   // warm-up
  wrk(wrk_bin, alone_port, "1s");

  std::vector<double> via_preforkd, without;
  for (int round = 1; round <= kRounds; ++round) {
    const bool preforkd_first = round % 2 == 1;
    for (int i = 0; i < 2; ++i) {
      const bool through = (i == 0) == preforkd_first;
      const double rps = wrk(wrk_bin, through ? daemon.port() : alone_port, "5s");
      (through ? via_preforkd : without).push_back(rps);
      std::printf("  round %d: %-16s %10.0f requests/s\n", round, through ? "through preforkd" : "without preforkd",
                  rps);
      std::fflush(stdout);
    }
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f", median(via_preforkd));
  report("median through preforkd (req/s)", buf);
  std::snprintf(buf, sizeof buf, "%.0f", median(without));
  report("median without preforkd (req/s)", buf);
  std::snprintf(buf, sizeof buf, "%.3f", median(via_preforkd) / median(without));
  report("ratio through / without", buf, ">= 0.99");
}

}  // namespace bench
