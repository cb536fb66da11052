// preforkctl check: the orchestrator probe. 0 when every slot has a ready worker; 1 with
// one line naming the slots that are not (a crash-looping slot in backoff); 69 when no
// master answers.

#include <catch2/catch.hpp>

#include "control_helpers.hpp"

using namespace bt;
using nlohmann::json;

TEST_CASE("check exits 0 when every worker is ready", "[control][check]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  REQUIRE(wait_workers_ready(d, 2, 0));

  const CtlResult r = ctl(d, {"check"}, 30s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "2/2 workers ready\n");

  const CtlResult j = ctl(d, {"check", "--json"}, 30s);
  INFO("stdout: " << j.out);
  CHECK(j.exit_code == 0);
  const json doc = json::parse(j.out, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  CHECK(doc.at("ready") == true);
  CHECK(doc.at("workers_ready") == 2);
  CHECK(doc.at("workers_total") == 2);
  CHECK(doc.at("not_ready").empty());
  stop_cleanly(d);
}

TEST_CASE("check exits 1 naming a slot that crash-loops in backoff", "[control][check]") {
  const int port = free_port();
  // Slot 1 dies 50 ms after each start and never says READY=1.
  Daemon d(toml({.address = local_address(port),
                 .count = 3,
                 .args = {"--slot-only", "1", "--crash-after-ms", "50", "--no-ready"},
                 .ready = "notify",
                 .worker = "backoff_initial = \"500ms\"\nbackoff_max = \"5s\"\n"}));
  REQUIRE(d.wait_log("worker 1: restarting in"));

  CtlResult r;
  // Slot 1 is "starting" or "backoff" depending on when we ask, and the others may not be
  // ready yet: wait for the answer with the healthy slots ready and slot 1 backing off.
  const bool seen = wait_until([&] {
    r = ctl(d, {"check"}, 30s);
    return r.out == "2/3 workers ready: slot 1 backoff\n";
  });
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  REQUIRE(seen);
  CHECK(r.exit_code == 1);

  const CtlResult j = ctl(d, {"--json", "check"}, 30s);
  INFO("json: " << j.out);
  CHECK(j.exit_code == 1);
  const json doc = json::parse(j.out, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  CHECK(doc.at("ready") == false);
  CHECK(doc.at("workers_ready") == 2);
  REQUIRE(doc.at("not_ready").size() == 1);
  CHECK(doc.at("not_ready")[0].at("slot") == 1);
  stop_cleanly(d);
}

TEST_CASE("check exits 69 when no master answers", "[control][check]") {
  TempDir dir;
  const CtlResult r = run_ctl({"--socket", dir.file("absent.sock"), "check"}, 30s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 69);
  CHECK(r.out.empty());
  CHECK(r.err.find("absent.sock") != std::string::npos);

  const CtlResult timeout = run_ctl({"--socket", dir.file("absent.sock"), "--timeout", "0s", "check"}, 30s);
  CHECK(timeout.exit_code == 2);
}
