// balance: balanced accept (issue 7). For each listener choice — reuseport with
// balance = "hash" (plain kernel spreading), mode = "shared" (one queue), reuseport with
// balance = "load" (the default: the eBPF program picks a worker per connection; needs
// root) and the same with preforkd.ebpf = "off" (the master's /proc sampler) — wrk runs
// against preforkd with
//   - the sync_worker fixture (a plain accept loop on fd 3 as handed over, its flags
//     untouched: blocking, as preforkd hands it by default; one request at a time), 4
//     workers, a fresh connection per request: uniform (/?ms=2) and uneven (90 % 2 ms,
//     10 % 50 ms);
//   - preforkd-demo (an epoll event loop), 2 workers: keep-alive and fresh connections
//     on GET /, and fresh connections on the uneven CPU mix (/work?ms=2 and 50).
// wrk -t1 -c3 --latency (-c64 -t2 for keep-alive), BENCH_BALANCE_SECONDS (default 5)
// each, 3 rounds interleaved with the order rotated. Printed: req/s, p50 and p99 per
// round, the median of each and its ratio to the others, the spread (max/min of the
// rounds), and the master's CPU use (from /proc/<master>/stat) under load and idle.
// BENCH_BALANCE_ONLY=sync (or demo, or any part of a workload's name) runs only the
// workloads whose name contains it; BENCH_BALANCE_ROUNDS sets the rounds (default 3).
// wrk shares the 2 cores with the workers: compare within one run, never across runs.

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {
namespace {

constexpr int kDefaultRounds = 3;

struct Choice {
  const char* name;
  const char* listen_extra;
  const char* daemon_extra = "";
};
constexpr Choice kChoices[] = {
    {"hash", "balance = \"hash\"\n"},
    {"shared", "mode = \"shared\"\n"},
    {"load", ""},                            // the default: eBPF where it loads
    {"loadsm", "", "ebpf = \"off\"\n"},  // load, sampled by the master
};
constexpr std::size_t kLoad = 2, kSampled = 3;

struct Workload {
  const char* name;
  bool sync;        // the sync_worker fixture (4 workers, a plain accept loop) or preforkd-demo (2)
  bool keep_alive;  // wrk's persistent connections, or "Connection: close"
  const char* short_path;
  const char* long_path;  // every 10th request; nullptr: uniform
};
constexpr Workload kWorkloads[] = {
    {"sync, uniform 2 ms, fresh", true, false, "/?ms=2", nullptr},
    {"sync, 90% 2 ms / 10% 50 ms, fresh", true, false, "/?ms=2", "/?ms=50"},
    {"demo, GET /, keep-alive", false, true, "/", nullptr},
    {"demo, GET /, fresh", false, false, "/", nullptr},
    {"demo, 90% 2 ms / 10% 50 ms CPU, fresh", false, false, "/work?ms=2", "/work?ms=50"},
};

struct Run {
  double rps = 0, p50_ms = 0, p99_ms = 0, master_cpu = 0;
};

// utime + stime of `pid`, in clock ticks.
long long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) throw Failure("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  long long utime = 0, stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::atoll(f.c_str());
    if (i == 15) {
      stime = std::atoll(f.c_str());
      break;
    }
  }
  return utime + stime;
}

// Percent of one core that `pid` used over `seconds`, from a ticks difference.
double cpu_percent(long long ticks, double seconds) {
  return 100.0 * static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK)) / seconds;
}

// "2.51ms" / "812.00us" / "1.02s" -> ms.
double parse_latency(const std::string& text) {
  const double v = std::atof(text.c_str());
  if (text.ends_with("us")) return v / 1000;
  if (text.ends_with("ms")) return v;
  if (text.ends_with("s")) return v * 1000;
  return v;
}

std::string write_script(const TempDir& dir, const Workload& w) {
  const std::string path = dir.file(std::string("mix.lua"));
  std::ofstream out(path);
  out << "local n = 0\n"
      << "request = function()\n"
      << "  n = n + 1\n"
      << "  local path = \"" << w.short_path << "\"\n";
  if (w.long_path != nullptr) out << "  if n % 10 == 0 then path = \"" << w.long_path << "\" end\n";
  if (w.keep_alive)
    out << "  return wrk.format(\"GET\", path)\n";
  else
    out << "  return wrk.format(\"GET\", path, {[\"Connection\"] = \"close\"})\n";
  out << "end\n";
  return path;
}

Run run_wrk(const std::string& wrk_bin, const std::string& script, const Workload& w, Preforkd& daemon,
            int seconds) {
  const long long before = cpu_ticks(daemon.pid());
  const std::int64_t start = mono_ns();
  std::vector<std::string> argv{wrk_bin, "--latency", "-s", script, "-d" + std::to_string(seconds) + "s"};
  if (w.keep_alive) {
    argv.insert(argv.end(), {"-t2", "-c64"});
  } else {
    argv.insert(argv.end(), {"-t1", "-c3"});
  }
  argv.push_back("http://127.0.0.1:" + std::to_string(daemon.port()) + "/");
  // Not a structured binding: clang 14 cannot capture one in the lambda below.
  const std::pair<int, std::string> captured = run_capture(argv, Ms(seconds * 1000 + 30'000));
  const int status = captured.first;
  const std::string& out = captured.second;
  const double elapsed = static_cast<double>(mono_ns() - start) / 1e9;
  const long long after = cpu_ticks(daemon.pid());
  const auto at = out.find("Requests/sec:");
  if (status != 0 || at == std::string::npos) throw Failure("wrk failed:\n" + out);
  for (const char* trouble : {"Socket errors", "Non-2xx"})
    if (const auto t = out.find(trouble); t != std::string::npos)
      std::printf("    wrk: %s\n", out.substr(t, out.find('\n', t) - t).c_str());
  Run r;
  r.rps = std::atof(out.c_str() + at + 13);
  const auto pct = [&](const char* label) {
    const auto p = out.find(label, out.find("Latency Distribution"));
    if (p == std::string::npos) throw Failure(std::string("wrk printed no ") + label + " latency:\n" + out);
    std::istringstream in(out.substr(p + std::string(label).size()));
    std::string v;
    in >> v;
    return parse_latency(v);
  };
  r.p50_ms = pct(" 50%");
  r.p99_ms = pct(" 99%");
  r.master_cpu = cpu_percent(after - before, elapsed);
  return r;
}

void wait_answering(int port) {
  const std::int64_t end = mono_ns() + 10'000'000'000;
  while (http_get(port, 1s) != Outcome::answered) {
    if (mono_ns() > end) throw Failure("no answer on port " + std::to_string(port));
    std::this_thread::sleep_for(10ms);
  }
}

double spread(const std::vector<double>& v) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return *lo > 0 ? *hi / *lo : 0;
}

}  // namespace

void balance() {
  const std::string wrk_bin = find_in_path("wrk");
  if (wrk_bin.empty()) throw Failure("wrk is not installed (`make bench` installs it, or apt-get install wrk)");
  const char* env_seconds = std::getenv("BENCH_BALANCE_SECONDS");
  const int seconds = env_seconds != nullptr && std::atoi(env_seconds) > 0 ? std::atoi(env_seconds) : 5;
  const char* env_rounds = std::getenv("BENCH_BALANCE_ROUNDS");
  const int rounds = env_rounds != nullptr && std::atoi(env_rounds) > 0 ? std::atoi(env_rounds) : kDefaultRounds;
  const char* env_only = std::getenv("BENCH_BALANCE_ONLY");
  const std::string only = env_only != nullptr ? env_only : "";
  std::printf("  wrk -t1 -c3 --latency (keep-alive: -t2 -c64), %d s per run, %d rounds; load average %s\n", seconds,
              rounds, [] {
                std::ifstream in("/proc/loadavg");
                static std::string one;
                in >> one;
                return one.c_str();
              }());
  TempDir dir;

  bool idle_measured = false;
  for (const Workload& w : kWorkloads) {
    if (!only.empty() && std::string(w.name).find(only) == std::string::npos) continue;
    std::printf("\n  %s\n", w.name);
    std::fflush(stdout);
    const std::string script = write_script(dir, w);
    std::vector<std::unique_ptr<Preforkd>> daemons;
    for (const Choice& c : kChoices) {
      Setup setup;
      setup.command = {w.sync ? sync_worker_bin() : demo_bin()};
      setup.count = w.sync ? 4 : 2;
      setup.listen_extra = c.listen_extra;
      setup.daemon_extra = c.daemon_extra;
      daemons.push_back(std::make_unique<Preforkd>(setup));
    }
    for (auto& d : daemons) {
      d->wait_ready();
      wait_answering(d->port());
    }
    if (!idle_measured) {
      idle_measured = true;
      // The master idle (workers waiting, no connection): 3 s of its CPU time.
      for (const std::size_t i : {kLoad, kSampled}) {
        Preforkd& load = *daemons[i];
        std::this_thread::sleep_for(500ms);
        const long long before = cpu_ticks(load.pid());
        std::this_thread::sleep_for(3s);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.2f %%", cpu_percent(cpu_ticks(load.pid()) - before, 3.0));
        report(std::string("master CPU, ") + kChoices[i].name + ", idle 3 s", buf, "< 0.5 %");
      }
    }
    std::vector<std::vector<Run>> runs(std::size(kChoices));
    for (int round = 0; round < rounds; ++round) {
      for (std::size_t k = 0; k < std::size(kChoices); ++k) {
        const std::size_t i = (k + static_cast<std::size_t>(round)) % std::size(kChoices);
        const Run r = run_wrk(wrk_bin, script, w, *daemons[i], seconds);
        runs[i].push_back(r);
        std::printf("    round %d  %-6s %8.0f req/s  p50 %8.2f ms  p99 %8.2f ms  master CPU %5.2f %%\n", round + 1,
                    kChoices[i].name, r.rps, r.p50_ms, r.p99_ms, r.master_cpu);
        std::fflush(stdout);
      }
    }
    std::vector<double> rps(std::size(kChoices)), p50(std::size(kChoices)), p99(std::size(kChoices));
    for (std::size_t i = 0; i < std::size(kChoices); ++i) {
      std::vector<double> a, b, c, cpu;
      for (const Run& r : runs[i]) {
        a.push_back(r.rps);
        b.push_back(r.p50_ms);
        c.push_back(r.p99_ms);
        cpu.push_back(r.master_cpu);
      }
      rps[i] = median(a);
      p50[i] = median(b);
      p99[i] = median(c);
      std::printf("    median %-6s %8.0f req/s  p50 %8.2f ms  p99 %8.2f ms  master CPU %5.2f %%  (req/s spread %.2fx)\n",
                  kChoices[i].name, rps[i], p50[i], p99[i], median(cpu), spread(a));
    }
    for (const std::size_t i : {kLoad, kSampled}) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "req/s %.2f of shared, %.2f of hash; p50 %.2fx shared; p99 %.2fx shared",
                    rps[i] / rps[1], rps[i] / rps[0], p50[i] / p50[1], p99[i] / p99[1]);
      report(std::string(kChoices[i].name) + " vs. the others", buf,
             w.sync && w.long_path != nullptr ? ">= 0.95 of shared, p50 <= 1.2x, p99 <= 1x"
                                              : (w.sync ? "" : ">= 0.97 of hash"));
    }
    std::fflush(stdout);
  }
}

}  // namespace bench
