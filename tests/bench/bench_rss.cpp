// rss: the master's resident memory (VmRSS, and its peak VmHWM, from /proc/<pid>/status)
// with 8 and with 256 bench_worker fixtures, read 1 s after all of them are ready, and
// again after 50 status requests on the control socket (which walk every worker), with
// its split into anonymous memory and file pages (mostly the shared libraries' code).

#include <cstdio>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

std::string kib_text(std::optional<long> kib) {
  if (!kib) return "?";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MB", static_cast<double>(*kib) / 1024.0);
  return buf;
}

void measure(int workers) {
  Setup setup;
  setup.command = {bench_worker_bin()};
  setup.count = workers;
  setup.ready = "immediate";
  Preforkd daemon(setup);
  daemon.wait_ready();
  std::this_thread::sleep_for(1s);
  const std::string n = std::to_string(workers) + " workers";
  report("master VmRSS, " + n + ", idle", kib_text(proc_status_kib(daemon.pid(), "VmRSS")),
         workers == 8 ? "< 4 MB" : "");
  for (int i = 0; i < 50; ++i) control_request(daemon.control_socket(), R"({"cmd":"status"})", 5s);
  report("master VmRSS, " + n + ", after 50 status", kib_text(proc_status_kib(daemon.pid(), "VmRSS")));
  report("master VmHWM (peak), " + n, kib_text(proc_status_kib(daemon.pid(), "VmHWM")));
  report(
      "  of VmRSS: RssAnon / RssFile (shared libraries)",
      kib_text(proc_status_kib(daemon.pid(), "RssAnon")) + " / " + kib_text(proc_status_kib(daemon.pid(), "RssFile")));
}

}  // namespace

void rss() {
  std::printf("  bench_worker fixtures, ready = \"immediate\", one reuseport listener; read 1 s after ready\n");
  measure(8);
  measure(256);
}

}  // namespace bench
