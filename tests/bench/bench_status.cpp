// status: the time of one status request on the control socket with 256 workers.
//
// 256 bench_worker fixtures (ready = "immediate"); 1 s after all are ready, 50 requests
// one after another over the raw control socket, each on a fresh connection: connect,
// send {"cmd":"status"}\n, read the reply line. Timed from connect to the reply's newline.

#include <cstdio>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr int kWorkers = 256;
constexpr int kRequests = 50;

}  // namespace

void status() {
  Setup setup;
  setup.command = {bench_worker_bin()};
  setup.count = kWorkers;
  setup.ready = "immediate";
  Preforkd daemon(setup);
  daemon.wait_ready();
  std::this_thread::sleep_for(1s);

  std::vector<double> times;
  std::size_t reply_bytes = 0;
  for (int i = 0; i < kRequests; ++i) {
    double ms = 0;
    const auto reply = control_request(daemon.control_socket(), R"({"cmd":"status"})", 5s, &ms);
    if (!reply.value("ok", false)) throw Failure("status failed: " + reply.dump());
    const auto workers = reply.at("workers").size();
    if (workers != kWorkers) throw Failure("status lists " + std::to_string(workers) + " workers, not 256");
    reply_bytes = reply.dump().size();
    times.push_back(ms);
  }
  std::printf("  %d status requests, replies of %zu bytes listing 256 workers\n", kRequests, reply_bytes);
  report("status request, median", fmt_ms(median(times)), "< 5 ms");
  report("status request, p99", fmt_ms(percentile(times, 99)), "< 5 ms");
}

}  // namespace bench
