// `preforkctl restart`: rolling and readiness-gated, of one slot or of all of them, without
// dropping a connection; a slot that does not exist is an error.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <thread>

#include "control_helpers.hpp"

using namespace bt;

namespace {

bool none_alive(const std::vector<pid_t>& pids) {
  for (pid_t p : pids)
    if (process_alive(p)) return false;
  return true;
}

// Ready workers with these pids by slot, and no other process, within the deadline.
std::vector<pid_t> settled_pids(const Daemon& d, int count) {
  std::vector<pid_t> pids;
  const bool ok = wait_until([&] {
    const auto s = wait_workers_ready(d, count, std::nullopt, 5s);
    if (!s) return false;
    pids = pids_in(*s);
    return static_cast<int>(processes_of_master(d.pid()).size()) == count;
  });
  return ok ? pids : std::vector<pid_t>{};
}

}  // namespace

TEST_CASE("restart of one slot replaces only that slot's worker", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2, .ready = "notify"}));
  const auto before = settled_pids(d, 2);
  REQUIRE(before.size() == 2);

  const CtlResult r = ctl(d, {"restart", "1"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  REQUIRE(r.exit_code == 0);

  // The reply comes when the restart is done: slot 1 already has its new worker.
  const auto s = status_of(d);
  REQUIRE(s);
  const auto right_after = pids_in(*s);
  REQUIRE(right_after.size() == 2);
  CHECK(right_after[0] == before[0]);
  CHECK(right_after[1] != before[1]);
  CHECK(right_after[1] > 0);

  const auto after = settled_pids(d, 2);
  REQUIRE(after.size() == 2);
  CHECK(after[0] == before[0]);
  CHECK(after[1] == right_after[1]);
  CHECK_FALSE(process_alive(before[1]));
  CHECK(process_alive(before[0]));
  // The old slot-1 worker was stopped gracefully.
  CHECK(d.wait_log("worker 1 (pid " + std::to_string(before[1]) + ") exited with status 0"));
  // Both slots answer, slot 1 from its new worker.
  std::vector<pid_t> answering(2, -1);
  for (const Hello& h : distinct_workers(port, 2))
    if (h.slot >= 0 && h.slot < 2) answering[static_cast<std::size_t>(h.slot)] = h.pid;
  CHECK(answering == after);

  stop_cleanly(d);
}

TEST_CASE("restart of all workers replaces every one rolling while a client sees no failure", "[control]") {
  const int port = free_port();
  // Slow to get ready: old and new workers of a slot overlap for a while under the load.
  Daemon d(toml({.address = local_address(port), .count = 3, .args = {"--ready-delay-ms", "400"}, .ready = "notify"}));
  const auto before = settled_pids(d, 3);
  REQUIRE(before.size() == 3);

  // How many workers (children of the master) run at once during the restart. Only
  // direct children count: under ASan, an exiting worker's leak checker briefly runs as
  // a process of its own that shares the worker's memory and so its environment.
  std::atomic<bool> sampling{true};
  std::atomic<int> most{0};
  std::thread sampler([&] {
    while (sampling) {
      int n = 0;
      for (pid_t p : processes_of_master(d.pid())) n += parent_of(p) == d.pid() ? 1 : 0;
      if (n > most) most = n;
    }
  });
  LoadClient load_a(port), load_b(port);
  REQUIRE(load_a.wait_answered(20));
  REQUIRE(load_b.wait_answered(20));
  const CtlResult r = ctl(d, {"restart"});
  // The reply comes when the restart is finished.
  const auto right_after = status_of(d);
  const bool old_gone = none_alive(before);
  CHECK(load_a.wait_answered(20));
  const auto a = load_a.stop();
  const auto b = load_b.stop();
  sampling = false;
  sampler.join();
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\n"
                  << describe(a) << "\n"
                  << describe(b) << "\nlog: " << d.log());
  REQUIRE(r.exit_code == 0);
  CHECK(a.answered > 0);
  CHECK(b.answered > 0);
  CHECK(a.failed == 0);
  CHECK(b.failed == 0);
  CHECK(old_gone);
  REQUIRE(right_after);

  const auto after = settled_pids(d, 3);
  REQUIRE(after.size() == 3);
  CHECK(pids_in(*right_after) == after);
  for (pid_t p : after) CHECK(std::find(before.begin(), before.end(), p) == before.end());
  // Rolling, one slot at a time (max_surge 1): a new worker starts beside the old one of
  // its slot, so there are 4 processes at times, and never more.
  CHECK(most == 4);
  for (std::size_t slot = 0; slot < 3; ++slot) {
    INFO("slot " << slot);
    CHECK(d.count_log("worker " + std::to_string(slot) + " (pid " + std::to_string(before[slot]) +
                      ") exited with status 0") == 1);
  }

  stop_cleanly(d);
}

TEST_CASE("restart of a slot that does not exist is an error", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  const auto before = settled_pids(d, 2);
  REQUIRE(before.size() == 2);

  const CtlResult r = ctl(d, {"restart", "9"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find('9') != std::string::npos);
  CHECK(settled_pids(d, 2) == before);

  stop_cleanly(d);
}
