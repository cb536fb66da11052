// churn: what a fresh-connection client sees while workers are SIGKILLed.
//
// 4 client threads open one connection per request (GET /, "Connection: close", 2 s
// timeout) for 6 s while one of the 2 demo workers is SIGKILLed every 300 ms, the two in
// turn. Each request is answered, refused (ECONNREFUSED), reset (ECONNRESET, or EOF
// without a response) or timed out.
//
//  - preforkd: the master holds each slot's SO_REUSEPORT socket and hands it to the
//    replacement. Its restart policy applies: a worker killed again less than 1 s after
//    it started backs off (100 ms, then doubling), and a kill that finds its slot without
//    a worker (backing off) is skipped and counted.
//  - the Fiber way: each demo worker binds its own SO_REUSEPORT socket (--listen
//    --reuseport); a plain loop here forks/execs a replacement as soon as a pidfd says
//    a worker died.

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <memory>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr Ms kDuration = 6s;
constexpr Ms kKillEvery = 300ms;
constexpr int kClientThreads = 4;
constexpr Ms kRequestTimeout = 2s;
constexpr std::int64_t kMsNs = 1'000'000;

void wait_answering(int port) {
  const std::int64_t end = mono_ns() + 10'000 * kMsNs;
  while (http_get(port, 1s) != Outcome::answered) {
    if (mono_ns() > end) throw Failure("nothing answers on port " + std::to_string(port));
    std::this_thread::sleep_for(10ms);
  }
}

void print_per_kill(const LoadStats& stats, int kills) {
  std::printf("    failed requests per SIGKILL: %.2f\n", kills > 0 ? static_cast<double>(stats.failed()) / kills : 0.0);
}

void via_preforkd() {
  Setup setup;
  setup.command = {demo_bin()};
  setup.count = 2;
  Preforkd daemon(setup);
  daemon.wait_ready();
  wait_answering(daemon.port());

  int kills = 0, skipped = 0;
  LoadClient load(daemon.port(), kClientThreads, kRequestTimeout);
  const std::int64_t start = mono_ns();
  for (int k = 0;; ++k) {
    const std::int64_t when = start + (k + 1) * kKillEvery.count() * kMsNs;
    if (when >= start + kDuration.count() * kMsNs) break;
    while (mono_ns() < when) std::this_thread::sleep_for(1ms);
    const auto status = control_request(daemon.control_socket(), R"({"cmd":"status"})", 2s);
    const auto& w = status.at("workers").at(static_cast<std::size_t>(k % 2));
    const pid_t pid = json_int(w, "pid", 0);
    const std::string state = w.value("state", "");
    if (pid > 0 && (state == "ready" || state == "starting")) {
      ::kill(pid, SIGKILL);
      ++kills;
    } else {
      ++skipped;
    }
  }
  while (mono_ns() < start + kDuration.count() * kMsNs) std::this_thread::sleep_for(1ms);
  const LoadStats stats = load.stop();
  print_outcomes("preforkd (held reuseport sockets), " + std::to_string(kills) + " SIGKILLs, " +
                     std::to_string(skipped) + " skipped (slot backing off)",
                 stats);
  print_per_kill(stats, kills);
  // "<time> info  worker 0: restarting in 3s556ms (crash 7 in a row)"
  const auto backoffs = daemon.log().lines_with("restarting in");
  std::string last = backoffs.empty() ? "none" : backoffs.back();
  if (const auto at = last.find("worker"); at != std::string::npos) last = last.substr(at);
  std::printf("    restarts that backed off: %zu; the last: %s\n", backoffs.size(), last.c_str());
}

// One worker of the Fiber way: a demo binding its own reuseport socket, and a pidfd.
struct FiberWorker {
  std::unique_ptr<Child> child;
  int pidfd = -1;

  void start(const std::string& address, int slot) {
    if (pidfd >= 0) ::close(pidfd);
    child = std::make_unique<Child>(Child::Options{
        {demo_bin(), "--listen", address, "--reuseport"}, {"PREFORK_WORKER_ID=" + std::to_string(slot)}, -1, -2});
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child->pid(), 0));
    if (pidfd < 0) throw Failure("pidfd_open failed");
  }
  ~FiberWorker() {
    if (pidfd >= 0) ::close(pidfd);
  }
};

void fiber_way() {
  const int port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  std::array<FiberWorker, 2> workers;
  for (int i = 0; i < 2; ++i) workers[static_cast<std::size_t>(i)].start(address, i);
  wait_answering(port);
  std::this_thread::sleep_for(100ms);

  int kills = 0, respawns = 0;
  LoadClient load(port, kClientThreads, kRequestTimeout);
  const std::int64_t start = mono_ns(), end = start + kDuration.count() * kMsNs;
  std::int64_t next_kill = start + kKillEvery.count() * kMsNs;
  for (int k = 0; mono_ns() < end;) {
    const std::int64_t wake = std::min(next_kill, end);
    std::array<pollfd, 2> fds{};
    for (std::size_t i = 0; i < 2; ++i) fds[i] = {workers[i].pidfd, POLLIN, 0};
    const std::int64_t left = wake - mono_ns();
    if (left > 0 && ::poll(fds.data(), fds.size(), static_cast<int>((left + kMsNs - 1) / kMsNs)) > 0) {
      for (std::size_t i = 0; i < 2; ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        workers[i].child->wait(0ms);  // reap
        workers[i].start(address, static_cast<int>(i));
        ++respawns;
      }
      continue;
    }
    if (mono_ns() >= next_kill && next_kill < end) {
      workers[static_cast<std::size_t>(k % 2)].child->signal(SIGKILL);
      ++kills;
      ++k;
      next_kill += kKillEvery.count() * kMsNs;
    }
  }
  const LoadStats stats = load.stop();
  print_outcomes("the Fiber way (own reuseport sockets, respawn loop), " + std::to_string(kills) + " SIGKILLs, " +
                     std::to_string(respawns) + " respawns",
                 stats);
  print_per_kill(stats, kills);
}

}  // namespace

void churn() {
  via_preforkd();
  fiber_way();
}

}  // namespace bench
