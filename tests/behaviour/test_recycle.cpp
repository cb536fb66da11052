// Recycling (worker.max_memory, worker.max_lifetime): a worker that grows too big or has
// run long enough is replaced by a one-slot rolling update, the new worker ready before
// the old one stops, with no failed request; at most max_surge at once; bad values are
// config errors with file:line:col.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

#include "control_helpers.hpp"

using namespace bt;

namespace {

// Counts the master's direct children (its workers) while it runs; `most` is the peak.
class ChildCounter {
 public:
  explicit ChildCounter(pid_t master)
      : thread_([this, master] {
          while (running_) {
            int n = 0;
            for (pid_t p : processes_of_master(master)) n += parent_of(p) == master ? 1 : 0;
            if (n > most_) most_ = n;
          }
        }) {}
  ~ChildCounter() { stop(); }
  ChildCounter(const ChildCounter&) = delete;
  ChildCounter& operator=(const ChildCounter&) = delete;
  int stop() {
    running_ = false;
    if (thread_.joinable()) thread_.join();
    return most_;
  }

 private:
  std::atomic<bool> running_{true};
  std::atomic<int> most_{0};
  std::thread thread_;
};

// GET /alloc?mb=N on a fresh connection: the worker that took it now holds N MiB more.
std::optional<Hello> grow_one(int port, int mb) {
  const auto r = http_get(port, "/alloc?mb=" + std::to_string(mb));
  if (!r || r->status != 200) return std::nullopt;
  const auto at = r->body.find("worker ");
  if (at == std::string::npos) return std::nullopt;
  return parse_hello("hello from " + r->body.substr(at));
}

// The "recycled:" lines of the log, as (slot, pid, reason).
struct Recycled {
  int slot;
  pid_t pid;
  std::string reason;
};
std::vector<Recycled> recycled_lines(const std::string& log) {
  static const std::regex line(R"(worker (\d+) \(pid (\d+)\): recycled: ([^;\n]+);)");
  std::vector<Recycled> out;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it)
    out.push_back({std::stoi((*it)[1]), static_cast<pid_t>(std::stol((*it)[2])), (*it)[3]});
  return out;
}

// Recycles ran one after another: every "recycled:" line (but the last) is followed by
// its "recycle done" line before the next "recycled:" line.
bool one_at_a_time(const std::string& log) {
  std::size_t at = 0;
  while (true) {
    const auto start = log.find("): recycled: ", at);
    if (start == std::string::npos) return true;
    const auto done = log.find("): recycle done", start);
    const auto next = log.find("): recycled: ", start + 1);
    if (next == std::string::npos) return true;
    if (done == std::string::npos || done > next) return false;
    at = next;
  }
}

int replaced_for(const nlohmann::json& status, const std::string& why) {
  int n = 0;
  for (const auto& w : status["workers"]) n += w["replaced_for"].value(why, 0);
  return n;
}


}  // namespace

TEST_CASE("recycle: a worker above max_memory is replaced ready first with no failed request", "[recycle]") {
  const int port = free_port();
  // The new worker takes a while to be ready, so the old one must keep serving meanwhile.
  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .args = {"--ready-delay-ms", "300"},
                 .ready = "notify",
                 .worker = "max_memory = \"100MiB\"\nmemory_sample_interval = \"250ms\"\n",
                 .preforkd = "log_level = \"debug\"\n"}));
  REQUIRE(wait_workers_ready(d, 2));
  LoadClient load(port);
  REQUIRE(load.wait_answered(20));

  const auto grown = grow_one(port, 160);
  REQUIRE(grown);
  const std::string old = "worker " + std::to_string(grown->slot) + " (pid " + std::to_string(grown->pid) + ")";
  // Recycled, and its replacement serves in its place once the old one has stopped.
  const bool recycled = d.wait_log(old + ": recycle done");
  std::optional<nlohmann::json> status;
  const bool counted = wait_until([&] {
    status = status_of(d);
    return status && replaced_for(*status, "memory") == 1;
  });
  CHECK(load.wait_answered(20));
  const auto seen = load.stop();
  const std::string log = d.log();
  INFO(describe(seen) << "\nlog: " << log << "\nstatus: " << (status ? status->dump() : "none"));
  REQUIRE(recycled);
  CHECK(counted);
  CHECK(seen.failed == 0);
  CHECK_FALSE(process_alive(grown->pid));

  // The log says why, in the words of the issue: "recycled: memory 161 MiB > 100 MiB".
  const auto lines = recycled_lines(log);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].slot == grown->slot);
  CHECK(lines[0].pid == grown->pid);
  std::smatch m;
  const std::regex memory(R"(memory (\d+) MiB > 100 MiB)");
  REQUIRE(std::regex_match(lines[0].reason, m, memory));
  CHECK(std::stoi(m[1]) > 100);

  // The replacement was ready before the old worker was told to stop (it exited after).
  REQUIRE(status);
  const auto& w = (*status)["workers"][static_cast<std::size_t>(grown->slot)];
  const pid_t replacement = w.value("pid", -1);
  CHECK(replacement != grown->pid);
  const auto ready_at = log.find("worker " + std::to_string(grown->slot) + " (pid " + std::to_string(replacement) +
                                 ") is ready");
  const auto exited_at = log.find(old + " exited with status 0");
  CHECK(ready_at != std::string::npos);
  CHECK(exited_at != std::string::npos);
  CHECK(ready_at < exited_at);
  CHECK(w.value("recycled", std::string()) == lines[0].reason);
  // The other worker was left alone.
  CHECK(replaced_for(*status, "memory") == 1);
  stop_cleanly(d);
}

TEST_CASE("recycle: with max_surge = 1 - workers above max_memory are recycled one at a time", "[recycle]") {
  const int port = free_port();
  const int count = 3;
  Daemon d(toml({.address = local_address(port),
                 .count = count,
                 .args = {"--ready-delay-ms", "200"},
                 .ready = "notify",
                 .worker = "max_memory = \"60MiB\"\nmemory_sample_interval = \"250ms\"\nmax_surge = 1\n"}));
  REQUIRE(wait_workers_ready(d, count));
  ChildCounter children(d.pid());
  LoadClient load(port);
  REQUIRE(load.wait_answered(10));
  // Every worker grows past the limit, quickly, so that several are due at once.
  std::set<pid_t> grown;
  for (int i = 0; i < 60 && static_cast<int>(grown.size()) < count; ++i)
    if (auto h = grow_one(port, 80)) grown.insert(h->pid);
  REQUIRE(grown.size() >= 2);
  // Each of them is recycled (and replaced by a small one).
  const bool all = wait_until([&] {
    const auto lines = recycled_lines(d.log());
    std::set<pid_t> done;
    for (const auto& l : lines) done.insert(l.pid);
    for (pid_t p : grown)
      if (!done.count(p) || process_alive(p)) return false;
    return true;
  });
  const int most = children.stop();
  const auto seen = load.stop();
  const std::string log = d.log();
  INFO(describe(seen) << "\nlog: " << log);
  CHECK(all);
  // Never two at once: one replacement beside the workers at most, and the log in order.
  CHECK(most <= count + 1);
  CHECK(one_at_a_time(log));
  CHECK(seen.failed == 0);
  for (const auto& l : recycled_lines(log)) CHECK(l.reason.rfind("memory ", 0) == 0);
  REQUIRE(wait_workers_ready(d, count));
  stop_cleanly(d);
}

TEST_CASE("recycle: max_lifetime recycles every worker - one at a time and again", "[recycle]") {
  const int port = free_port();
  const int count = 3;
  Daemon d(toml({.address = local_address(port), .count = count, .worker = "max_lifetime = \"3s\"\n"}));
  const auto first = wait_workers_ready(d, count);
  REQUIRE(first);
  const std::vector<pid_t> before = pids_in(*first);
  // The client starts at once, while the first workers still serve (a slow machine can
  // take seconds to answer the status requests below; a lifetime can end meanwhile).
  LoadClient load(port);
  // Each worker shows when its lifetime ends: within 3 s +- 10 % of its start.
  std::optional<nlohmann::json> status;
  CHECK(wait_until([&] {
    status = status_of(d);
    if (!status) return false;
    for (const auto& w : (*status)["workers"])
      if (w.value("pid", -1) > 0 && w.value("recycle_in_s", -1.0) < 0) return false;
    return true;
  }));
  if (status)
    for (const auto& w : (*status)["workers"]) CHECK(w.value("recycle_in_s", -1.0) <= 3.3);
  REQUIRE(load.wait_answered(10));
  // Every first worker is recycled for its lifetime, and so is at least one replacement.
  const bool all = wait_until(
      [&] {
        const auto lines = recycled_lines(d.log());
        for (pid_t p : before) {
          bool found = false;
          for (const auto& l : lines) found = found || (l.pid == p && l.reason == "lifetime");
          if (!found) return false;
        }
        return static_cast<int>(lines.size()) > count;
      },
      60s);
  CHECK(load.wait_answered(10));  // the replacements serve too
  const auto seen = load.stop();
  const std::string log = d.log();
  INFO(describe(seen) << "\nlog: " << log);
  CHECK(all);
  CHECK(one_at_a_time(log));
  // The client was served throughout, by the first workers and by their replacements.
  CHECK(seen.answered >= 20);
  CHECK(seen.failed == 0);
  // Not every worker need answer one client (the balancer picks among the waiting ones):
  // what must hold is that first workers answered, and replacements after them.
  const auto is_first = [&](pid_t p) { return std::find(before.begin(), before.end(), p) != before.end(); };
  CHECK(std::any_of(seen.pids.begin(), seen.pids.end(), is_first));
  CHECK(std::any_of(seen.pids.begin(), seen.pids.end(), [&](pid_t p) { return !is_first(p); }));
  status = status_of(d);
  REQUIRE(status);
  CHECK(replaced_for(*status, "lifetime") >= count);
  stop_cleanly(d);
}

TEST_CASE("recycle: a replacement that never gets ready leaves the old worker serving", "[recycle]") {
  const int port = free_port();
  TempDir scratch;
  const std::string flag = scratch.file("no-more-workers");
  // Workers started once the flag file exists exit at once: a recycle cannot succeed.
  const std::string script = "test -e " + flag + " && exit 3; exec " + demo_bin();
  Daemon d(toml({.address = local_address(port),
                 .count = 1,
                 .ready = "notify",
                 .worker = "max_lifetime = \"2s\"\n",
                 .command = {"/bin/sh", "-c", script}}));
  REQUIRE(wait_workers_ready(d, 1));
  { std::ofstream(flag) << "1\n"; }
  // Whichever worker is current once the flag exists (a fast recycle may have come first).
  REQUIRE(d.wait_log("): recycle failed: "));
  const std::string log = d.log();
  INFO("log: " << log);
  std::smatch m;
  REQUIRE(std::regex_search(log, m, std::regex(R"(worker 0 \(pid (\d+)\): recycle failed: ([^\n]*))")));
  const pid_t old = static_cast<pid_t>(std::stol(m[1]));
  CHECK(m[2].str().find("before it was ready") != std::string::npos);
  CHECK(m[2].str().find("keeps serving") != std::string::npos);
  // The old worker is still the slot's ready one, and it answers.
  const auto s = wait_workers_ready(d, 1);
  REQUIRE(s);
  CHECK(pids_in(*s).at(0) == old);
  const auto h = hello(port);
  REQUIRE(h);
  CHECK(h->pid == old);
  CHECK(process_alive(old));
  // Not retried in a tight loop: the next try is 30 s (recycle_retry_after) away.
  CHECK(d.count_log("recycle failed") == 1);
  stop_cleanly(d);
}

TEST_CASE("recycle: a reload asked for during a recycle waits for it then runs", "[recycle]") {
  const int port = free_port();
  // A slow replacement: the recycle is still running when the reload comes.
  const std::string worker = "max_lifetime = \"1s\"\n";
  DemoConfig c{.address = local_address(port),
               .count = 1,
               .args = {"--ready-delay-ms", "3000"},
               .ready = "notify",
               .worker = worker};
  Daemon d(toml(c));
  REQUIRE(wait_workers_ready(d, 1));
  REQUIRE(d.wait_log("): recycled: lifetime"));
  c.worker = "max_lifetime = \"\"\n";
  rewrite_config(d, toml(c));
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 0);
  CHECK(d.count_log("waits for the recycle in progress") >= 1);
  const auto s = status_of(d);
  REQUIRE(s);
  CHECK((*s)["master"].value("generation", 0) == 1);
  stop_cleanly(d);
}

TEST_CASE("recycle: bad max_memory and max_lifetime and memory_sample_interval are config errors", "[recycle]") {
  struct Row {
    std::string line;
    std::string expected;  // after "<file>:3:"
  };
  const std::vector<Row> rows{
      {"max_memory = \"512KiB\"", "14: worker.max_memory: must be \"\" (off) or a size from 1 MiB to 1024 GiB"},
      {"max_memory = \"lots\"", "14: worker.max_memory: "},
      {"max_lifetime = \"100ms\"", "16: worker.max_lifetime: must be \"\" (off) or a duration from 1s to 8760h"},
      {"memory_sample_interval = \"0s\"", "26: worker.memory_sample_interval: must be a duration from 250ms to 1h"},
  };
  for (const Row& r : rows) {
    INFO(r.line);
    Daemon d("[worker]\ncommand = [" + toml_string(demo_bin()) + "]\n" + r.line + "\n");
    CHECK(d.wait_exit() == 78);
    const std::string out = d.log();
    INFO(out);
    CHECK(out.find(" error " + d.config_path() + ":3:" + r.expected) != std::string::npos);
    CHECK(no_process_left(d.pid()));
  }
}
