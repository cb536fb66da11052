// pool: the adaptive pool (issue 20 point 6) beside uWSGI's cheaper subsystem, in one run,
// on the same machine, under the same load (pool_load.hpp): fresh-connection clients
// stepping 1 -> 8 -> 1 concurrent, BENCH_POOL_SECONDS (default 10) each, GET /?ms=20.
//
// The worker is synchronous, one request at a time, 20 ms each, blocking accept: the
// sync_worker fixture under preforkd; under uWSGI a WSGI app (its http-socket, no
// router) that sleeps the same 20 ms and answers the same body. Rows:
//   - preforkd static count = 8 and count = 2; dynamic (min_count = 2, count = 8,
//     spare = 1, idle_timeout = "2s");
//   - uWSGI 2.0 (Debian's uwsgi + uwsgi-plugin-python3), workers = 8, cheaper = 2,
//     cheaper-initial = 2, cheaper-step = 2, cheaper-overload = 1, with each of its
//     algorithms spare, backlog and busyness; the best of them (the lowest p99 right
//     after the step) is the one the goal compares with.
// Each row prints p50/p99 and req/s per phase, the p99 of the first 2 s after the step
// and of the rest of the high phase, the time from the step until 8 workers run (the
// master's live children, counted every 25 ms) and the worker-seconds over the run; a
// preforkd row also its pool's log lines ("pool: 2 -> 3 workers: ..."), the rows are
// run one after another. Then the issue's goals, PASS or MISS,
// printed and never asserted. BENCH_POOL_ROUNDS (default 1) repeats the rows, the order
// rotated, and prints the medians and the spread. BENCH_POOL_ONLY=<part of a row's name>
// runs only those rows ("ondemand": only the ondemand part). A row whose keys this
// preforkd lacks prints "not available" with what `preforkd --check` said.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "bench_common.hpp"
#include "benchmarks.hpp"
#include "pool_load.hpp"

namespace bench {
namespace {

using pool::Result;

constexpr const char* kDynamic = "pool = \"dynamic\"\nmin_count = 2\nspare = 1\nidle_timeout = \"2s\"\n";

struct Row {
  const char* name;
  int count;                 // preforkd's count, or uWSGI's workers
  int at_rest;               // workers before the load
  const char* worker_extra;  // preforkd's [worker] lines; nullptr: uWSGI
  const char* algo = "";     // uWSGI's cheaper-algo
};
const Row kRows[] = {
    {"static 8", 8, 8, ""},
    {"static 2", 2, 2, ""},
    {"dynamic 2-8", 8, 2, kDynamic},
    {"uWSGI spare", 8, 2, nullptr, "spare"},
    {"uWSGI backlog", 8, 2, nullptr, "backlog"},
    {"uWSGI busyness", 8, 2, nullptr, "busyness"},
};
constexpr std::size_t kStatic8 = 0, kDynamicRow = 2, kFirstUwsgi = 3;

// Same request cost and the same body as the sync_worker fixture.
constexpr const char* kWsgiApp = R"(import os, time
from urllib.parse import parse_qs
import uwsgi
def application(environ, start_response):
    ms = int(parse_qs(environ.get("QUERY_STRING", "")).get("ms", ["0"])[0])
    time.sleep(ms / 1000.0)
    body = ("sync worker %d (pid %d)\n" % (uwsgi.worker_id() - 1, os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                              ("Connection", "close")])
    return [body]
)";

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : fallback;
}

// Waits until 127.0.0.1:port answers and `master` has `workers` live children.
void wait_at_rest(int port, pid_t master, int workers, const std::string& who) {
  const std::int64_t end = mono_ns() + 30'000'000'000;
  while (http_get(port, 1s) != Outcome::answered || live_children(master) != workers) {
    if (mono_ns() > end)
      throw Failure(who + ": not answering with " + std::to_string(workers) + " workers within 30 s (" +
                    std::to_string(live_children(master)) + " running)");
    std::this_thread::sleep_for(20ms);
  }
}

// uWSGI on its own http-socket, its log in <dir>/uwsgi-<algo>.log. Stopped by SIGINT
// (it kills its workers), SIGKILL after 5 s.
class Uwsgi {
 public:
  Uwsgi(const std::string& bin, const TempDir& dir, const Row& row, int port)
      : log_(dir.file(std::string("uwsgi-") + row.algo + ".log")) {
    const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Failure("cannot open " + log_);
    const std::string plugins =
        std::string("python3") + (std::string(row.algo) == "busyness" ? ",cheaper_busyness" : "");
    child_.emplace(Child::Options{{bin,
                                   "--plugin",
                                   plugins,
                                   "--http-socket",
                                   "127.0.0.1:" + std::to_string(port),
                                   "--master",
                                   "--workers",
                                   std::to_string(row.count),
                                   "--cheaper",
                                   "2",
                                   "--cheaper-initial",
                                   "2",
                                   "--cheaper-step",
                                   "2",
                                   "--cheaper-overload",
                                   "1",
                                   "--cheaper-algo",
                                   row.algo,
                                   "--wsgi-file",
                                   dir.file("app.py"),
                                   "--need-app",
                                   "--disable-logging"},
                                  {},
                                  fd,
                                  fd});
    ::close(fd);
  }
  ~Uwsgi() {
    child_->signal(SIGINT);
    if (!child_->wait(5s)) child_->kill_and_reap();
  }
  Uwsgi(const Uwsgi&) = delete;
  Uwsgi& operator=(const Uwsgi&) = delete;
  [[nodiscard]] pid_t pid() const { return child_->pid(); }
  [[nodiscard]] std::string tail() const {
    std::ifstream in(log_);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::string out;
    for (std::size_t i = lines.size() > 10 ? lines.size() - 10 : 0; i < lines.size(); ++i)
      out += "    | " + lines[i] + "\n";
    return out;
  }

 private:
  std::string log_;
  std::optional<Child> child_;
};

Setup preforkd_setup(const Row& row) {
  Setup s;
  s.command = {sync_worker_bin()};
  s.count = row.count;
  s.worker_extra = row.worker_extra;
  return s;
}

Result run_row(const Row& row, const std::string& uwsgi_bin, const TempDir& dir, double seconds) {
  if (row.worker_extra != nullptr) {
    Preforkd daemon(preforkd_setup(row));
    wait_at_rest(daemon.port(), daemon.pid(), row.at_rest, row.name);
    const Result r = pool::step_load(daemon.port(), daemon.pid(), seconds, pool::kHighClients);
    // What the pool did, as its log says it ("pool: 2 -> 3 workers: ...").
    for (const std::string& line : daemon.log().lines_with("pool: ")) std::printf("      | %s\n", line.c_str());
    return r;
  }
  const int port = free_port();
  Uwsgi server(uwsgi_bin, dir, row, port);
  try {
    wait_at_rest(port, server.pid(), row.at_rest, row.name);
  } catch (const Failure& e) {
    throw Failure(std::string(e.what()) + "; uWSGI's log ends with:\n" + server.tail());
  }
  return pool::step_load(port, server.pid(), seconds, pool::kHighClients);
}

std::string ms2(double p50, double p99) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f / %.1f", p50, p99);
  return buf;
}
std::string seconds_or_never(double s) {
  if (std::isnan(s)) return "never";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", s);
  return buf;
}

void print_run(int round, const Row& row, const Result& r) {
  std::printf("    round %d  %-15s", round, row.name);
  for (const auto& p : r.phase) std::printf(" | %5.1f/%6.1f ms %4.0f/s", p.p50, p.p99, p.rps);
  std::printf(" | step p99 %6.1f ms, then %5.1f | 8 after %-7s | %5.1f worker-s, peak %d | failed %ld/%ld/%ld\n",
              r.step_p99, r.after_step_p99, seconds_or_never(r.to_full_s).c_str(), r.worker_seconds, r.peak,
              r.phase[0].failed, r.phase[1].failed, r.phase[2].failed);
  std::fflush(stdout);
}

// The median over the rounds of each number (NaN "never" sorts last).
Result median_of(const std::vector<Result>& runs) {
  const auto med = [&](auto field) {
    std::vector<double> v;
    for (const Result& r : runs) v.push_back(std::isnan(field(r)) ? INFINITY : field(r));
    const double m = median(v);
    return std::isinf(m) ? std::nan("") : m;
  };
  Result m;
  for (std::size_t i = 0; i < 3; ++i) {
    m.phase[i].p50 = med([i](const Result& r) { return r.phase[i].p50; });
    m.phase[i].p99 = med([i](const Result& r) { return r.phase[i].p99; });
    m.phase[i].rps = med([i](const Result& r) { return r.phase[i].rps; });
    for (const Result& r : runs) m.phase[i].failed += r.phase[i].failed;
  }
  m.step_p99 = med([](const Result& r) { return r.step_p99; });
  m.after_step_p99 = med([](const Result& r) { return r.after_step_p99; });
  m.to_full_s = med([](const Result& r) { return r.to_full_s; });
  m.worker_seconds = med([](const Result& r) { return r.worker_seconds; });
  for (const Result& r : runs) m.peak = std::max(m.peak, r.peak);
  return m;
}

void print_spread(const Row& row, const std::vector<Result>& runs) {
  const auto range = [&](auto field) {
    double lo = INFINITY, hi = -INFINITY;
    for (const Result& r : runs) {
      const double v = std::isnan(field(r)) ? INFINITY : field(r);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (std::isinf(lo)) return std::string("never");
    char buf[48];
    std::snprintf(buf, sizeof buf, std::isinf(hi) ? "%.2f-never" : "%.2f-%.2f", lo, hi);
    return std::string(buf);
  };
  std::printf("    spread %-15s high p99 %s ms, step p99 %s ms, 8 workers after (s) %s, worker-s %s\n", row.name,
              range([](const Result& r) { return r.phase[1].p99; }).c_str(),
              range([](const Result& r) { return r.step_p99; }).c_str(),
              range([](const Result& r) { return r.to_full_s; }).c_str(),
              range([](const Result& r) { return r.worker_seconds; }).c_str());
}

void goal(const std::string& name, bool measured, double value, double limit, const char* unit, bool strict = false) {
  char buf[96];
  if (!measured)
    std::snprintf(buf, sizeof buf, "n/a");
  else
    std::snprintf(buf, sizeof buf, "%.2f%s (limit %.2f%s) %s", value, unit, limit, unit,
                  (strict ? value < limit : value <= limit) ? "PASS" : "MISS");
  report(name, buf);
}

}  // namespace

void pool_bench() {
  const double seconds = env_int("BENCH_POOL_SECONDS", 10);
  const int rounds = env_int("BENCH_POOL_ROUNDS", 1);
  const char* only_env = std::getenv("BENCH_POOL_ONLY");
  const std::string only = only_env != nullptr ? only_env : "";
  const std::string uwsgi_bin = find_in_path("uwsgi");
  TempDir dir("preforkd-bench-pool");
  dir.write("app.py", kWsgiApp);

  // Which rows run, and why the others cannot.
  std::vector<std::string> unavailable(std::size(kRows));
  std::vector<std::size_t> chosen;
  for (std::size_t i = 0; i < std::size(kRows); ++i) {
    const Row& row = kRows[i];
    if (!only.empty() && std::string(row.name).find(only) == std::string::npos) continue;
    if (row.worker_extra == nullptr && uwsgi_bin.empty())
      unavailable[i] = "uwsgi is not installed (scripts/install-deps.sh --bench)";
    else if (row.worker_extra != nullptr && *row.worker_extra != '\0')
      unavailable[i] = check_rejects(preforkd_setup(row)).value_or("");
    if (!unavailable[i].empty())
      std::printf("  %-15s not available: %s\n", row.name, unavailable[i].c_str());
    else
      chosen.push_back(i);
  }
  if (!chosen.empty())
    std::printf(
        "  %d round(s) of 3 phases x %.0f s: 1 -> 8 -> 1 fresh-connection clients, GET %s; per phase "
        "p50/p99 and req/s\n",
        rounds, seconds, pool::kPath.c_str());
  std::vector<std::vector<Result>> runs(std::size(kRows));
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t k = 0; k < chosen.size(); ++k) {
      const Row& row = kRows[chosen[(k + static_cast<std::size_t>(round)) % chosen.size()]];
      const std::size_t i = static_cast<std::size_t>(&row - kRows);
      try {
        runs[i].push_back(run_row(row, uwsgi_bin, dir, seconds));
        print_run(round + 1, row, runs[i].back());
      } catch (const Failure& e) {
        std::printf("    round %d  %-15s FAILED: %s\n", round + 1, row.name, e.what());
      }
    }
  }
  if (chosen.empty()) {
    if (only.empty() || std::string("ondemand").find(only) != std::string::npos) pool_ondemand();
    return;
  }

  std::vector<Result> med(std::size(kRows));
  std::printf(
      "\n  | pool | p50/p99 ms, 1 client | 8 clients | 1 client again | p99 first %.0f s after the step | p99 8 "
      "clients "
      "after those | req/s 1/8/1 | 8 workers after the step | worker-seconds | failed |\n"
      "  |---|---|---|---|---|---|---|---|---|---|\n",
      pool::kStepWindowSeconds);
  for (std::size_t i = 0; i < std::size(kRows); ++i) {
    if (runs[i].empty()) continue;
    med[i] = median_of(runs[i]);
    const Result& m = med[i];
    std::printf("  | %s | %s | %s | %s | %.1f ms | %.1f ms | %.0f/%.0f/%.0f | %s | %.0f | %ld |\n", kRows[i].name,
                ms2(m.phase[0].p50, m.phase[0].p99).c_str(), ms2(m.phase[1].p50, m.phase[1].p99).c_str(),
                ms2(m.phase[2].p50, m.phase[2].p99).c_str(), m.step_p99, m.after_step_p99, m.phase[0].rps,
                m.phase[1].rps, m.phase[2].rps, seconds_or_never(m.to_full_s).c_str(), m.worker_seconds,
                m.phase[0].failed + m.phase[1].failed + m.phase[2].failed);
  }
  if (rounds > 1)
    for (std::size_t i = 0; i < std::size(kRows); ++i)
      if (runs[i].size() > 1) print_spread(kRows[i], runs[i]);

  // The goals of the issue, from the medians.
  std::size_t best = 0;
  for (std::size_t i = kFirstUwsgi; i < std::size(kRows); ++i)
    if (!runs[i].empty() && (best == 0 || med[i].step_p99 < med[best].step_p99)) best = i;
  const Result& d = med[kDynamicRow];
  const Result& s8 = med[kStatic8];
  const bool have_d = !runs[kDynamicRow].empty(), have_s8 = !runs[kStatic8].empty();
  std::printf("\n");
  goal("dynamic p99 at 8 clients / static 8's", have_d && have_s8, d.phase[1].p99 / s8.phase[1].p99, 1.2, "x");
  if (have_d && have_s8) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.2fx (%.1f ms against %.1f ms; no goal)", d.after_step_p99 / s8.after_step_p99,
                  d.after_step_p99, s8.after_step_p99);
    report("  the same without the first 2 s after the step", buf);
  }
  goal("dynamic: 8 workers after the step", have_d, std::isnan(d.to_full_s) ? INFINITY : d.to_full_s, 0.5, " s");
  goal("dynamic worker-seconds / static 8's", have_d && have_s8, d.worker_seconds / s8.worker_seconds, 0.6, "x");
  goal(std::string("dynamic step p99 / best uWSGI's") + (best != 0 ? std::string(" (") + kRows[best].algo + ")" : ""),
       have_d && best != 0, d.step_p99 / med[best].step_p99, 1.0, "x", true);
  std::fflush(stdout);
  if (only.empty()) pool_ondemand();
}

}  // namespace bench
