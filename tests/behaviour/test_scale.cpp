// Scaling (`preforkctl scale`, SIGTTIN, SIGTTOU) changes the worker count without touching
// the other workers; scaling down stops the highest slots gracefully, after draining what
// is queued on their sockets, so no client sees a failure.

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>

#include "control_helpers.hpp"

using namespace bt;
using nlohmann::json;

namespace {

// Waits until the daemon runs exactly `count` ready workers and no other process; their pids by slot.
std::vector<pid_t> settled_at(const Daemon& d, int count) {
  const auto s = wait_workers_ready(d, count);
  if (!s) return {};
  const auto pids = pids_in(*s);
  if (!wait_until([&] { return static_cast<int>(processes_of_master(d.pid()).size()) == count; })) return {};
  return pids;
}

// The slots that answered: `count` distinct ones must, and they must be 0..count-1.
std::set<int> answering_slots(int port, int count) {
  std::set<int> slots;
  for (const Hello& h : distinct_workers(port, count)) slots.insert(h.slot);
  return slots;
}

std::set<int> range(int n) {
  std::set<int> s;
  for (int i = 0; i < n; ++i) s.insert(i);
  return s;
}

std::vector<pid_t> first(const std::vector<pid_t>& pids, std::size_t n) {
  return {pids.begin(), pids.begin() + static_cast<long>(std::min(n, pids.size()))};
}

}  // namespace

TEST_CASE("scale +N and -N and N change the worker count and leave the other workers alone", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  const auto initial = settled_at(d, 2);
  REQUIRE(initial.size() == 2);

  {
    const CtlResult r = ctl(d, {"scale", "+2"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("from 2 to 4") != std::string::npos);
    const auto pids = settled_at(d, 4);
    INFO(d.log());
    REQUIRE(pids.size() == 4);
    CHECK(first(pids, 2) == initial);
    CHECK(answering_slots(port, 4) == range(4));
  }
  {
    const CtlResult r = ctl(d, {"scale", "-1"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const auto pids = settled_at(d, 3);
    INFO(d.log());
    REQUIRE(pids.size() == 3);
    CHECK(first(pids, 2) == initial);
    CHECK(answering_slots(port, 3) == range(3));
  }
  {
    const CtlResult r = ctl(d, {"scale", "2"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const auto pids = settled_at(d, 2);
    INFO(d.log());
    REQUIRE(pids.size() == 2);
    CHECK(pids == initial);
    CHECK(answering_slots(port, 2) == range(2));
  }

  // And what the status reports agrees with preforkctl's own view.
  const CtlResult s = ctl(d, {"status", "--json"});
  REQUIRE(s.exit_code == 0);
  const auto j = json::parse(s.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  CHECK(j["workers"].size() == 2);

  stop_cleanly(d);
}

TEST_CASE("a scale outside 1..1024 is refused and changes nothing", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  const auto initial = settled_at(d, 2);
  REQUIRE(initial.size() == 2);

  const CtlResult below = ctl(d, {"scale", "-5"});  // the daemon refuses: 2 - 5 < 1
  INFO("stdout: " << below.out << "\nstderr: " << below.err);
  CHECK(below.exit_code == 1);
  CHECK_FALSE(below.err.empty());
  const CtlResult zero = ctl(d, {"scale", "0"});  // preforkctl refuses: a usage error
  INFO("stdout: " << zero.out << "\nstderr: " << zero.err);
  CHECK(zero.exit_code == 2);
  CHECK(settled_at(d, 2) == initial);

  stop_cleanly(d);
}

TEST_CASE("SIGTTIN adds a worker and SIGTTOU removes one", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  const auto initial = settled_at(d, 2);
  REQUIRE(initial.size() == 2);

  d.signal(SIGTTIN);
  const auto three = settled_at(d, 3);
  INFO(d.log());
  REQUIRE(three.size() == 3);
  CHECK(first(three, 2) == initial);
  CHECK(answering_slots(port, 3) == range(3));

  d.signal(SIGTTOU);
  const auto two = settled_at(d, 2);
  REQUIRE(two.size() == 2);
  CHECK(two == initial);
  CHECK_FALSE(process_alive(three[2]));
  CHECK(answering_slots(port, 2) == range(2));

  stop_cleanly(d);
}

TEST_CASE("scaling down stops the highest slots - gracefully", "[control]") {
  const int port = free_port();
  // notify: ready means the worker has set up its signal handling and can stop gracefully.
  Daemon d(toml({.address = local_address(port), .count = 4, .ready = "notify"}));
  const auto four = settled_at(d, 4);
  REQUIRE(four.size() == 4);

  const CtlResult r = ctl(d, {"scale", "2"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const auto two = settled_at(d, 2);
  INFO(d.log());
  REQUIRE(two.size() == 2);
  CHECK(two == first(four, 2));  // slots 0 and 1 untouched
  CHECK_FALSE(process_alive(four[2]));
  CHECK_FALSE(process_alive(four[3]));
  // Asked to stop (TERM) and exited by themselves, not killed.
  CHECK(d.wait_log("worker 2 (pid " + std::to_string(four[2]) + ") exited with status 0"));
  CHECK(d.wait_log("worker 3 (pid " + std::to_string(four[3]) + ") exited with status 0"));
  CHECK(d.count_log("exited on signal") == 0);

  stop_cleanly(d);
}

TEST_CASE("scaling down under a fresh-connection load drops no connection", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 4, .ready = "notify"}));
  REQUIRE(settled_at(d, 4).size() == 4);

  LoadClient load_a(port), load_b(port);
  REQUIRE(load_a.wait_answered(20));
  REQUIRE(load_b.wait_answered(20));
  // Several rounds, to give a lost connection a chance to show.
  int rounds_done = 0;
  for (int round = 0; round < 3; ++round) {
    const CtlResult down = ctl(d, {"scale", "1"});
    INFO("round " << round << " scale 1: " << down.out << down.err);
    REQUIRE(down.exit_code == 0);
    REQUIRE(settled_at(d, 1).size() == 1);
    REQUIRE(load_a.wait_answered(20));
    const CtlResult up = ctl(d, {"scale", "4"});
    INFO("round " << round << " scale 4: " << up.out << up.err);
    REQUIRE(up.exit_code == 0);
    REQUIRE(settled_at(d, 4).size() == 4);
    REQUIRE(load_a.wait_answered(20));
    ++rounds_done;
  }
  const auto a = load_a.stop();
  const auto b = load_b.stop();
  INFO(describe(a) << "\n" << describe(b) << "\nlog: " << d.log());
  REQUIRE(rounds_done == 3);
  CHECK(a.answered > 0);
  CHECK(b.answered > 0);
  CHECK(a.failed == 0);
  CHECK(b.failed == 0);

  stop_cleanly(d);
}

TEST_CASE("scale sets a target: 200 quick -1/+1 cycles end at the count asked for last", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  REQUIRE(settled_at(d, 2).size() == 2);

  const std::string path = control_socket(d);
  int refused = 0;
  std::string first_refusal;
  for (int cycle = 0; cycle < 200; ++cycle) {
    for (const char* delta : {"-1", "1"}) {
      const auto reply =
          control_request(path, std::string(R"({"cmd":"scale","delta":)") + delta + "}");
      REQUIRE(reply.has_value());
      if (!reply->value("ok", false)) {
        if (refused++ == 0) first_refusal = reply->dump();
      }
    }
  }
  INFO("first refusal: " << first_refusal);
  CHECK(refused == 0);
  // Exactly two workers serve, on slots 0 and 1, and no other process is left.
  const auto pids = settled_at(d, 2);
  INFO(d.log());
  REQUIRE(pids.size() == 2);
  CHECK(answering_slots(port, 2) == range(2));

  stop_cleanly(d);
}
