// status: the time of one status request on the control socket with 64 and 256 workers,
// and what the usage sampler (every worker's tree and its smaps_rollup, every 2 s) costs.
//
// N bench_worker fixtures (ready = "immediate"); 1 s after all are ready, 50 requests
// one after another over the raw control socket, each on a fresh connection: connect,
// send {"cmd":"status"}\n, read the reply line. Timed from connect to the reply's newline.
// Then the master's CPU time (utime + stime from /proc/<pid>/stat) over 10 s of idling,
// which is the sampler's cost (nothing else runs in the master then).

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr int kRequests = 50;
constexpr auto kIdle = 10s;

// utime + stime of `pid`, in clock ticks.
long long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 13; ++i) rest >> field;
  rest >> utime >> stime;
  return utime + stime;
}

void status_with(int kWorkers) {
  std::printf("  with %d workers\n", kWorkers);
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
    if (workers != static_cast<std::size_t>(kWorkers))
      throw Failure("status lists " + std::to_string(workers) + " workers, not " + std::to_string(kWorkers));
    reply_bytes = reply.dump().size();
    times.push_back(ms);
  }
  std::printf("  %d status requests, replies of %zu bytes listing %d workers\n", kRequests, reply_bytes, kWorkers);
  const std::string n = std::to_string(kWorkers) + " workers";
  report("status request, median, " + n, fmt_ms(median(times)), "< 5 ms");
  report("status request, p99, " + n, fmt_ms(percentile(times, 99)), "< 5 ms");

  const long long before = cpu_ticks(daemon.pid());
  std::this_thread::sleep_for(kIdle);
  const long long used = cpu_ticks(daemon.pid()) - before;
  const double percent = 100.0 * static_cast<double>(used) / static_cast<double>(::sysconf(_SC_CLK_TCK)) /
                         std::chrono::duration<double>(kIdle).count();
  char text[64];
  std::snprintf(text, sizeof text, "%.2f %% of one CPU", percent);
  report("master idle CPU (usage sampler every 2 s), " + n, text);
}

}  // namespace

void status() {
  status_with(64);
  status_with(256);
}

}  // namespace bench
