// metrics: the cost of GET /metrics with 256 workers.
//
// 256 bench_worker fixtures (ready = "immediate") and metrics_listen on 127.0.0.1; 1 s
// after all are ready: the master's CPU over 10 s with no scrape (its usage sampler alone),
// then over 10 s of 10 scrapes a second, each on a fresh connection, timed from connect to
// the end of the answer (the server closes after it).

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr int kWorkers = 256;
constexpr int kSeconds = 10;
constexpr int kPerSecond = 10;

// utime + stime of `pid`, in clock ticks.
long long master_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) throw Failure("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  long long utime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::atoll(f.c_str());
    if (i == 15) return utime + std::atoll(f.c_str());
  }
  throw Failure("short /proc/" + std::to_string(pid) + "/stat");
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

double percent_of_core(long long ticks, double seconds) {
  return 100.0 * static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK)) / seconds;
}

// One scrape: the whole answer, or a Failure. `ms` gets connect-to-close.
std::string scrape(int port, double* ms) {
  const auto start = mono_ns();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Failure(errno_text("socket"));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  const auto fail = [&](const std::string& what) {
    ::close(fd);
    throw Failure("scrape: " + what);
  };
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) fail(errno_text("connect"));
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    fail(errno_text("send"));
  char buf[65536];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) fail("no answer within 5 s");
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) fail(errno_text("recv"));
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  *ms = static_cast<double>(mono_ns() - start) / 1e6;
  if (!out.starts_with("HTTP/1.1 200 ")) fail("not a 200: " + out.substr(0, 80));
  return out;
}

}  // namespace

void metrics() {
  const int metrics_port = free_port();
  Setup setup;
  setup.command = {bench_worker_bin()};
  setup.count = kWorkers;
  setup.ready = "immediate";
  setup.daemon_extra = "metrics_listen = \"127.0.0.1:" + std::to_string(metrics_port) + "\"\n";
  Preforkd daemon(setup);
  daemon.wait_ready();
  std::this_thread::sleep_for(1s);

  const long long idle_before = master_ticks(daemon.pid());
  std::this_thread::sleep_for(std::chrono::seconds(kSeconds));
  const double idle = percent_of_core(master_ticks(daemon.pid()) - idle_before, kSeconds);

  std::vector<double> times;
  std::size_t bytes = 0;
  const long long before = master_ticks(daemon.pid());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kSeconds * kPerSecond; ++i) {
    // Paced: scrape i starts at i/10 s, whatever the previous one took.
    std::this_thread::sleep_until(start + i * std::chrono::milliseconds(1000 / kPerSecond));
    double ms = 0;
    bytes = scrape(metrics_port, &ms).size();
    times.push_back(ms);
  }
  std::this_thread::sleep_until(start + std::chrono::seconds(kSeconds));
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double busy = percent_of_core(master_ticks(daemon.pid()) - before, elapsed);

  std::printf("  %zu scrapes of %zu bytes (256 workers), %d a second\n", times.size(), bytes, kPerSecond);
  report("scrape latency, p50", fmt_ms(median(times)));
  report("scrape latency, p99", fmt_ms(percentile(times, 99)));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %%", idle);
  report("master CPU, no scrapes, 10 s", buf);
  std::snprintf(buf, sizeof buf, "%.2f %%", busy);
  report("master CPU, 10 scrapes/s, 10 s", buf);
}

}  // namespace bench
