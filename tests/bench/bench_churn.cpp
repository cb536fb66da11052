// churn: what a fresh-connection client sees while workers are SIGKILLed, for preforkd,
// pm2 and the Fiber way, in one run, with the same worker and the same churn.
//
// 4 client threads open one connection per request (GET /, "Connection: close", 2 s
// timeout) for 6 s while one of the 2 demo workers is SIGKILLed every 300 ms, the two in
// turn (a kill that finds no process in its slot is skipped and counted). Each request is
// answered, refused (ECONNREFUSED), reset (ECONNRESET, or EOF without a response) or
// timed out.
//
//  - preforkd: the master holds each slot's SO_REUSEPORT socket and hands it to the
//    replacement; a worker that served is replaced at once (the restart policy backs off
//    only workers that cannot stay up).
//  - pm2 (npm's `pm2`, when installed: `scripts/install-deps.sh --bench`), fork mode, 2
//    instances of the demo worker run directly (`interpreter: none`), each binding its own
//    SO_REUSEPORT socket; max_restarts raised and min_uptime lowered so that pm2 keeps
//    restarting through the whole run (its defaults give up after 16 restarts of a
//    worker that lived less than 1 s). Its own PM2_HOME in a temp dir; `pm2 kill` at the end.
//  - the Fiber way: each demo worker binds its own SO_REUSEPORT socket (--listen
//    --reuseport); a plain loop here forks/execs a replacement as soon as a pidfd says
//    a worker died.

#include <dirent.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

namespace {

constexpr Ms kDuration = 6s;
constexpr Ms kKillEvery = 300ms;
constexpr int kWorkers = 2;
constexpr int kClientThreads = 4;
constexpr Ms kRequestTimeout = 2s;
constexpr std::int64_t kMsNs = 1'000'000;

struct ChurnResult {
  std::string name;
  LoadStats stats;
  int kills = 0;
  int skipped = 0;
};

void wait_answering(int port) {
  const std::int64_t end = mono_ns() + 20'000 * kMsNs;
  while (http_get(port, 1s) != Outcome::answered) {
    if (mono_ns() > end) throw Failure("nothing answers on port " + std::to_string(port));
    std::this_thread::sleep_for(10ms);
  }
}

// The churn itself, the same for every contender: for kDuration, the worker of slot k % 2
// (pid_of, -1 when it has none right now) is SIGKILLed every kKillEvery, while `load` runs.
// `wait_until_ns` passes the time between kills (a plain sleep, or a respawn loop).
ChurnResult churn_with(const std::string& name, int port, const std::function<pid_t(int slot)>& pid_of,
                       const std::function<void(std::int64_t until_ns)>& wait_until_ns) {
  ChurnResult r;
  r.name = name;
  LoadClient load(port, kClientThreads, kRequestTimeout);
  const std::int64_t start = mono_ns(), end = start + kDuration.count() * kMsNs;
  for (int k = 0;; ++k) {
    const std::int64_t when = start + (k + 1) * kKillEvery.count() * kMsNs;
    if (when >= end) break;
    wait_until_ns(when);
    const pid_t pid = pid_of(k % kWorkers);
    if (pid > 0 && ::kill(pid, SIGKILL) == 0) {
      ++r.kills;
    } else {
      ++r.skipped;
    }
  }
  wait_until_ns(end);
  r.stats = load.stop();
  return r;
}

void sleep_until_ns(std::int64_t until) {
  while (mono_ns() < until) std::this_thread::sleep_for(1ms);
}

void print_result(const ChurnResult& r, const std::string& detail) {
  print_outcomes(r.name + ", " + std::to_string(r.kills) + " SIGKILLs, " + std::to_string(r.skipped) + " skipped" +
                     (detail.empty() ? "" : " (" + detail + ")"),
                 r.stats);
  std::printf("    failed requests per SIGKILL: %.2f\n",
              r.kills > 0 ? static_cast<double>(r.stats.failed()) / r.kills : 0.0);
}

// ---------------------------------------------------------------- preforkd

ChurnResult via_preforkd() {
  Setup setup;
  setup.command = {demo_bin()};
  setup.count = kWorkers;
  Preforkd daemon(setup);
  daemon.wait_ready();
  wait_answering(daemon.port());
  auto pid_of = [&](int slot) -> pid_t {
    const auto status = control_request(daemon.control_socket(), R"({"cmd":"status"})", 2s);
    const auto& w = status.at("workers").at(static_cast<std::size_t>(slot));
    const std::string state = w.value("state", "");
    return state == "ready" || state == "starting" ? json_int(w, "pid", 0) : -1;
  };
  ChurnResult r = churn_with("preforkd", daemon.port(), pid_of, sleep_until_ns);
  // "<time> info  worker 0: restarting in 3.56s (crash 7 in a row)"
  const auto backoffs = daemon.log().lines_with("restarting in");
  std::string last = backoffs.empty() ? "none" : backoffs.back();
  if (const auto at = last.find("worker"); at != std::string::npos) last = last.substr(at);
  print_result(r, "held reuseport sockets");
  std::printf("    restarts that backed off: %zu; the last: %s\n", backoffs.size(), last.c_str());
  return r;
}

// ---------------------------------------------------------------- pm2

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The processes whose parent is `parent` and whose environment has `key`=value:
// value -> pid. From /proc, so a kill needs no call into pm2 (a node start each).
std::map<std::string, pid_t> children_by_env(pid_t parent, const std::string& key) {
  std::map<std::string, pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (const dirent* e = ::readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent || state == 'Z') continue;
    const std::string env = read_text("/proc/" + std::to_string(pid) + "/environ");
    const std::string needle = key + "=";
    for (std::size_t at = 0; at < env.size();) {
      const std::size_t end = std::min(env.find('\0', at), env.size());
      if (env.compare(at, needle.size(), needle) == 0) out[env.substr(at + needle.size(), end - at - needle.size())] = pid;
      at = end + 1;
    }
  }
  ::closedir(proc);
  return out;
}

// Runs pm2 with its home in `home`; throws with its output when it fails.
std::string pm2(const std::string& bin, const std::string& home, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/env", "PM2_HOME=" + home, bin};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto [status, out] = run_capture(argv, 60s);
  if (status != 0) throw Failure("pm2 " + args.front() + " failed (status " + std::to_string(status) + "):\n" + out);
  return out;
}

ChurnResult via_pm2(const std::string& bin) {
  TempDir dir;
  const std::string home = dir.file("pm2");
  const int port = free_port();
  // pm2 starts its daemon on first use: stop it whatever happens below.
  struct Pm2Daemon {
    std::string bin, home;
    ~Pm2Daemon() {
      try {
        pm2(bin, home, {"kill"});
      } catch (const std::exception& e) {
        std::printf("    pm2 kill: %s\n", e.what());
      }
    }
  } guard{bin, home};
  const nlohmann::json apps = {
      {"apps",
       {{{"name", "churn"},
         {"script", demo_bin()},
         {"args", {"--listen", "127.0.0.1:" + std::to_string(port), "--reuseport"}},
         {"interpreter", "none"},
         {"exec_mode", "fork"},
         {"instances", kWorkers},
         {"autorestart", true},
         {"restart_delay", 0},
         {"min_uptime", 100},
         {"max_restarts", 1'000'000}}}}};
  dir.write("churn.json", apps.dump(2));
  pm2(bin, home, {"start", dir.file("churn.json")});
  const pid_t god = std::atoi(read_text(home + "/pm2.pid").c_str());
  if (god <= 0) throw Failure("pm2 wrote no daemon pid in " + home + "/pm2.pid");
  wait_answering(port);
  const std::int64_t end = mono_ns() + 20'000 * kMsNs;
  while (children_by_env(god, "NODE_APP_INSTANCE").size() < static_cast<std::size_t>(kWorkers)) {
    if (mono_ns() > end) throw Failure("pm2 did not start " + std::to_string(kWorkers) + " instances");
    std::this_thread::sleep_for(10ms);
  }
  auto pid_of = [&](int slot) -> pid_t {
    const auto live = children_by_env(god, "NODE_APP_INSTANCE");
    const auto it = live.find(std::to_string(slot));
    return it == live.end() ? -1 : it->second;
  };
  ChurnResult r = churn_with("pm2", port, pid_of, sleep_until_ns);
  std::string restarts;
  try {
    const auto list = nlohmann::json::parse(pm2(bin, home, {"jlist"}));
    for (const auto& p : list) restarts.append(" ").append(std::to_string(p.at("pm2_env").value("restart_time", -1)));
  } catch (const std::exception& e) {
    restarts = std::string(" unknown: ").append(e.what());
  }
  print_result(r, "fork mode, own reuseport sockets");
  std::printf("    pm2 restart_time per instance:%s\n", restarts.c_str());
  return r;
}

// ---------------------------------------------------------------- the Fiber way

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

ChurnResult fiber_way() {
  const int port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  std::array<FiberWorker, kWorkers> workers;
  for (int i = 0; i < kWorkers; ++i) workers[static_cast<std::size_t>(i)].start(address, i);
  wait_answering(port);
  int respawns = 0;
  // Between kills: respawn a worker as soon as its pidfd says it died.
  auto respawn_until = [&](std::int64_t until) {
    for (std::int64_t left = until - mono_ns(); left > 0; left = until - mono_ns()) {
      std::array<pollfd, kWorkers> fds{};
      for (std::size_t i = 0; i < fds.size(); ++i) fds[i] = {workers[i].pidfd, POLLIN, 0};
      if (::poll(fds.data(), fds.size(), static_cast<int>((left + kMsNs - 1) / kMsNs)) <= 0) continue;
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        workers[i].child->wait(0ms);  // reap
        workers[i].start(address, static_cast<int>(i));
        ++respawns;
      }
    }
  };
  auto pid_of = [&](int slot) -> pid_t {
    const auto& w = workers[static_cast<std::size_t>(slot)];
    return w.child && !w.child->exited() ? w.child->pid() : -1;
  };
  ChurnResult r = churn_with("the Fiber way", port, pid_of, respawn_until);
  print_result(r, "own reuseport sockets, respawn loop, " + std::to_string(respawns) + " respawns");
  return r;
}

}  // namespace

void churn() {
  std::printf("  2 demo workers, one SIGKILLed every %lld ms for %lld s, %d fresh-connection clients\n",
              static_cast<long long>(kKillEvery.count()), static_cast<long long>(kDuration.count() / 1000),
              kClientThreads);
  std::vector<ChurnResult> results;
  results.push_back(via_preforkd());
  kill_and_reap_all_children();
  const std::string pm2_bin = find_in_path("pm2");
  if (pm2_bin.empty()) {
    std::printf("  pm2: not installed (scripts/install-deps.sh --bench installs it from npm); skipped\n");
  } else {
    try {
      results.push_back(via_pm2(pm2_bin));
    } catch (const Failure& e) {
      std::printf("  pm2: %s\n", e.what());
    }
    kill_and_reap_all_children();
  }
  results.push_back(fiber_way());

  std::printf("\n  %-14s %6s %9s %8s %6s %9s %6s %11s\n", "", "kills", "answered", "refused", "reset", "timed out",
              "lost", "answered/s");
  for (const auto& r : results)
    std::printf("  %-14s %6d %9ld %8ld %6ld %9ld %6ld %11.0f\n", r.name.c_str(), r.kills, r.stats.answered,
                r.stats.refused, r.stats.reset, r.stats.timed_out, r.stats.failed(),
                r.stats.seconds > 0 ? static_cast<double>(r.stats.answered) / r.stats.seconds : 0.0);
  const auto pm2 = std::find_if(results.begin(), results.end(), [](const ChurnResult& r) { return r.name == "pm2"; });
  if (pm2 != results.end() && pm2->stats.answered > 0) {
    const ChurnResult& p = results.front();
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.2f",
                  static_cast<double>(p.stats.answered) / static_cast<double>(pm2->stats.answered));
    report("preforkd answered / pm2's", ratio, ">= 0.95");
    report("preforkd lost / pm2's", std::to_string(p.stats.failed()) + " / " + std::to_string(pm2->stats.failed()),
           "fewer");
  }
  std::fflush(stdout);
}

}  // namespace bench
