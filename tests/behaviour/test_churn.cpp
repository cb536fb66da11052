// Crash churn and honest counters: workers SIGKILLed every 300 ms after they served are
// replaced at once (no slot sits in backoff, both keep serving); per slot, crashes
// (unplanned exits) and replacements (reload, restart, scale) are counted apart, and
// LAST EXIT is the last unplanned exit; a rolled-back reload restarts nothing.

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <future>
#include <thread>

#include "control_helpers.hpp"

using namespace bt;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

const json& worker(const json& status, int slot) { return status.at("workers").at(static_cast<std::size_t>(slot)); }

int counter(const json& status, int slot, const char* key) { return worker(status, slot).value(key, -1); }

// Watches status in the background: per slot, the longest time it was seen in backoff
// without a break (from the first sample that showed it to the first that did not).
class BackoffWatch {
 public:
  explicit BackoffWatch(const Daemon& d, int slots)
      : d_(d), since_(static_cast<std::size_t>(slots)), longest_(static_cast<std::size_t>(slots), Ms(0)) {
    thread_ = std::thread([this] { run(); });
  }
  ~BackoffWatch() { stop(); }
  BackoffWatch(const BackoffWatch&) = delete;
  BackoffWatch& operator=(const BackoffWatch&) = delete;

  // Stops watching; the longest backoff per slot, and how many status samples were read.
  std::vector<Ms> stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return longest_;
  }
  [[nodiscard]] int samples() const { return samples_; }

 private:
  void run() {
    while (!stop_) {
      const auto s = status_of(d_, 5s);
      const auto now = Clock::now();
      if (s) {
        ++samples_;
        for (std::size_t i = 0; i < since_.size() && i < (*s)["workers"].size(); ++i) {
          const bool backoff = (*s)["workers"][i].value("state", "") == "backoff";
          if (backoff && !since_[i]) since_[i] = now;
          if (!backoff && since_[i]) since_[i].reset();
          if (since_[i]) longest_[i] = std::max(longest_[i], std::chrono::duration_cast<Ms>(now - *since_[i]));
        }
      }
      std::this_thread::sleep_for(10ms);  // the sampling period, not a wait for a condition
    }
  }

  const Daemon& d_;
  std::atomic<bool> stop_{false};
  std::atomic<int> samples_{0};
  std::vector<std::optional<Clock::time_point>> since_;
  std::vector<Ms> longest_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("a SIGKILL every 300 ms keeps both slots serving - with no slot in backoff", "[churn]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .ready = "immediate",
                 .worker = "backoff_initial = \"100ms\"\nbackoff_max = \"30s\"\n"}));
  REQUIRE(wait_workers_ready(d, 2));
  REQUIRE(distinct_workers(port, 2).size() == 2);

  // 6 s of fresh connections from four clients while the main thread kills a worker every
  // 300 ms, the two slots in turn: each worker lives about 600 ms, long after it was ready
  // and far outside the 100 ms throttle window. A worker is killed only once status shows
  // it ready and up for 300 ms, so a kill never lands inside the window, however slowly
  // the machine runs.
  BackoffWatch watch(d, 2);
  auto load = std::async(std::launch::async, [port] { return hello_load(port, 6s, 4, 0ms, 2s, 1s); });
  int kills = 0, skipped = 0;
  const auto start = Clock::now();
  for (int k = 0; Clock::now() < start + 6s; ++k) {
    std::this_thread::sleep_until(start + (k + 1) * 300ms);  // the churn's rhythm
    const auto s = status_of(d, 2s);
    if (!s) {
      ++skipped;
      continue;
    }
    const json& w = worker(*s, k % 2);
    const pid_t pid = w.value("pid", -1);
    if (w.value("state", "") == "ready" && pid > 0 && w.value("uptime_s", 0.0) >= 0.3) {
      ::kill(pid, SIGKILL);
      ++kills;
    } else {
      ++skipped;
    }
  }
  LoadStats stats = load.get();
  const int samples = watch.samples();
  const std::vector<Ms> longest = watch.stop();

  INFO("kills " << kills << ", skipped " << skipped << "; answered " << stats.answered << ", failed " << stats.failed
                << ", slow " << stats.slow << ", slowest " << stats.slowest.count() << " ms; status samples " << samples
                << "; longest backoff: slot 0 " << longest[0].count() << " ms, slot 1 " << longest[1].count() << " ms");
  INFO(d.log());
  CHECK(kills >= 10);
  // Both slots kept serving through the churn: the sockets are the master's, so a kill
  // loses only what its worker had accepted and not answered (measured: 0 to 3 in all),
  // never the connections queued meanwhile.
  CHECK(stats.by_slot[0] >= 10);
  CHECK(stats.by_slot[1] >= 10);
  CHECK(stats.failed <= kills / 2);
  CHECK(stats.answered >= 20 * stats.failed);
  // A worker that served is replaced at once: no backoff is announced, and none is seen
  // for longer than the throttle (100 ms) and a generous margin for a slow sample.
  CHECK(d.count_log("restarting in") == 0);
  CHECK(samples >= 20);
  CHECK(longest[0] < 1s);
  CHECK(longest[1] < 1s);

  // Every kill is a crash of its slot, and nothing was replaced on purpose.
  std::optional<json> last;
  CHECK(wait_until([&] {
    last = status_of(d, 5s);
    return last && counter(*last, 0, "crashes") + counter(*last, 1, "crashes") == kills;
  }));
  REQUIRE(last);
  INFO(last->dump());
  CHECK(counter(*last, 0, "replacements") == 0);
  CHECK(counter(*last, 1, "replacements") == 0);
  CHECK(worker(*last, 0).at("last_exit").value("signal", 0) == SIGKILL);

  stop_cleanly(d);
}

TEST_CASE("restart and reload count as replacements - a kill -9 as a crash and the last exit", "[churn]") {
  const int port = free_port();
  DemoConfig c{.address = local_address(port), .count = 2, .ready = "notify", .worker = "env = { V = \"1\" }\n"};
  Daemon d(toml(c));
  REQUIRE(wait_workers_ready(d, 2));

  // A rolling restart: one planned replacement per slot, no crash, no last exit.
  const CtlResult restarted = ctl(d, {"restart"});
  INFO("restart: " << restarted.out << restarted.err);
  REQUIRE(restarted.exit_code == 0);
  auto s = wait_workers_ready(d, 2);
  REQUIRE(s);
  INFO(s->dump());
  for (int slot : {0, 1}) {
    CHECK(counter(*s, slot, "replacements") == 1);
    CHECK(worker(*s, slot).at("replaced_for") == json{{"restart", 1}});
    CHECK(counter(*s, slot, "crashes") == 0);
    CHECK(counter(*s, slot, "restarts") == 1);  // as before: every process after the first
    CHECK(worker(*s, slot).at("last_exit").is_null());
  }

  // A kill -9 is a crash, and the slot's last exit.
  const pid_t victim = worker(*s, 0).value("pid", -1);
  REQUIRE(victim > 0);
  REQUIRE(::kill(victim, SIGKILL) == 0);
  REQUIRE(wait_until([&] {
    s = status_of(d, 5s);
    return s && counter(*s, 0, "crashes") == 1 && worker(*s, 0).value("state", "") == "ready";
  }));
  CHECK(worker(*s, 0).at("last_exit").value("signal", 0) == SIGKILL);
  CHECK(counter(*s, 0, "replacements") == 1);
  CHECK(counter(*s, 0, "restarts") == 2);
  CHECK(counter(*s, 1, "crashes") == 0);

  // A reload that rolls new workers: replacements again; the crash stays the last exit.
  c.worker = "env = { V = \"2\" }\n";
  rewrite_config(d, toml(c));
  const CtlResult reloaded = ctl(d, {"reload"});
  INFO("reload: " << reloaded.out << reloaded.err << "\nlog: " << d.log());
  REQUIRE(reloaded.exit_code == 0);
  s = wait_workers_ready(d, 2, 1);
  REQUIRE(s);
  INFO(s->dump());
  CHECK(counter(*s, 0, "replacements") == 2);
  CHECK(worker(*s, 0).at("replaced_for") == json{{"reload", 1}, {"restart", 1}});
  CHECK(counter(*s, 0, "crashes") == 1);
  CHECK(worker(*s, 0).at("last_exit").value("signal", 0) == SIGKILL);
  CHECK(counter(*s, 1, "crashes") == 0);
  CHECK(worker(*s, 1).at("last_exit").is_null());

  // preforkctl status shows both columns.
  const CtlResult table = ctl(d, {"status"});
  CHECK(table.out.find("CRASHES") != std::string::npos);
  CHECK(table.out.find("REPLACED") != std::string::npos);

  stop_cleanly(d);
}

TEST_CASE("a slot kept again by a scale up counts a replacement - not a crash", "[churn]") {
  const int port = free_port();
  // The worker ignores SIGTERM, so a slot scaled away stays "stopping" until its
  // stop_timeout: long enough to scale back up meanwhile.
  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .args = {"--ignore-term"},
                 .ready = "immediate",
                 .stop_timeout = "3s"}));
  REQUIRE(wait_workers_ready(d, 2));

  REQUIRE(ctl(d, {"scale", "1"}).exit_code == 0);
  REQUIRE(wait_until([&] {
    const auto s = status_of(d, 5s);
    return s && (*s)["workers"].size() == 2 && worker(*s, 1).value("state", "") == "stopping";
  }));
  REQUIRE(ctl(d, {"scale", "2"}).exit_code == 0);
  // The old process goes at its stop_timeout (SIGKILL), and a new one takes the slot.
  std::optional<json> s;
  REQUIRE(wait_until([&] {
    s = status_of(d, 5s);
    return s && counter(*s, 1, "replacements") == 1 && worker(*s, 1).value("state", "") == "ready";
  }));
  INFO(s->dump() << "\nlog: " << d.log());
  CHECK(worker(*s, 1).at("replaced_for") == json{{"scale", 1}});
  CHECK(counter(*s, 1, "crashes") == 0);
  CHECK(worker(*s, 1).at("last_exit").is_null());
  CHECK(counter(*s, 0, "replacements") == 0);
  CHECK(counter(*s, 0, "crashes") == 0);

  // The workers ignore SIGTERM: stop fast.
  d.signal(SIGQUIT);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("a rolled-back reload restarts nothing and announces no restart", "[churn]") {
  const int port = free_port();
  DemoConfig c{.address = local_address(port), .count = 2, .ready = "notify", .worker = "ready_timeout = \"20s\"\n"};
  Daemon d(toml(c));
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto old_pids = pids_in(*before);

  // The new generation's slot 0 is ready at once (and takes its slot); slot 1 crashes
  // 100 ms after it starts, before it is ready: the reload rolls back slot 0.
  c.args = {"--slot-only", "1", "--crash-after-ms", "100", "--no-ready"};
  rewrite_config(d, toml(c));
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("rolled back") != std::string::npos);

  const auto after = wait_workers_ready(d, 2, 0);
  REQUIRE(after);
  INFO(after->dump());
  // Slot 1's old worker never stopped; its failed candidate ran once and was not restarted.
  CHECK(pids_in(*after)[1] == old_pids[1]);
  CHECK(d.count_log(") exited on signal 11") == 1);
  CHECK(d.count_log("restarting in") == 0);
  CHECK(d.count_log("starting again") == 0);
  CHECK(counter(*after, 1, "crashes") == 1);  // the candidate's crash
  CHECK(worker(*after, 1).at("last_exit").value("signal", 0) == SIGSEGV);
  CHECK(counter(*after, 1, "replacements") == 0);
  // Slot 0 switched to the new generation and back: two planned replacements, no crash.
  CHECK(counter(*after, 0, "replacements") == 2);
  CHECK(worker(*after, 0).at("replaced_for") == json{{"reload", 2}});
  CHECK(counter(*after, 0, "crashes") == 0);
  CHECK(worker(*after, 0).at("last_exit").is_null());
  CHECK(wait_until([&] { return processes_of_master(d.pid()).size() == 2; }));

  stop_cleanly(d);
}
