// The eBPF balancer failing while the master runs: the listener goes on, balanced by the
// master's sampler, and the operator is told once at error level what that costs, in
// status (`balanced_by = "sampler"`, `ebpf_error`) and in /metrics (`preforkd_listener_ebpf`).
//
// To make the program fail at run time and not at start, the master runs without any
// capability (root with an empty bounding set, so bpf() is refused to it as to a user)
// and with only a `balance = "hash"` listener at start, which needs no program: a reload
// then makes it `balance = "load"`, and the new listener set's program fails to load.

#include <linux/capability.h>
#include <sys/prctl.h>

#include <catch2/catch.hpp>
#include <memory>
#include <thread>

#include "control_helpers.hpp"
#include "harness.hpp"

using namespace bt;

namespace {

std::string config(int port, int metrics_port, const std::string& balance) {
  return toml({.address = local_address(port),
               .count = 2,
               .preforkd = "ebpf = \"auto\"\nworker_cgroups = \"off\"\nmetrics_listen = " +
                           toml_string(local_address(metrics_port)) + "\n",
               .command = {fixture("sync_worker")}}) +
         "balance = " + toml_string(balance) + "\n";
}

// A preforkd started from a thread whose bounding set is empty: at exec it gets no
// capability although it runs as root (the bounding set is per thread and inherited by a
// child forked from it; this test's other threads keep theirs).
std::unique_ptr<Daemon> start_without_capabilities(const std::string& config_toml, std::string& failure) {
  std::unique_ptr<Daemon> d;
  std::thread starter([&] {
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
        failure = "prctl(PR_CAPBSET_DROP, " + std::to_string(cap) + ") failed (the test must run as root)";
        return;
      }
    }
    d = std::make_unique<Daemon>(config_toml);
  });
  starter.join();
  return d;
}

std::string line_with(const std::string& log, const std::string& needle) {
  const auto at = log.find(needle);
  if (at == std::string::npos) return "";
  const auto start = log.rfind('\n', at);
  const auto end = log.find('\n', at);
  return log.substr(start == std::string::npos ? 0 : start + 1, end == std::string::npos ? end : end - start - 1);
}

}  // namespace

TEST_CASE("an eBPF balancer that fails at run time is logged as an error and shows in status and metrics") {
  const int port = free_port(), metrics_port = free_port();
  std::string failure;
  auto d = start_without_capabilities(config(port, metrics_port, "hash"), failure);
  INFO(failure);
  REQUIRE(d);
  REQUIRE(wait_workers_ready(*d, 2));

  // The reload's new listener set loads the program at its first steering, and fails.
  rewrite_config(*d, config(port, metrics_port, "load"));
  const auto reloaded = ctl(*d, {"reload"});
  INFO(reloaded.out << reloaded.err << "\nlog: " << d->log());
  REQUIRE(reloaded.exit_code == 0);
  REQUIRE(d->wait_log("the eBPF balancer failed"));

  // Logged at error level, with the reason and the cost, never as "ignoring".
  const std::string line = line_with(d->log(), "the eBPF balancer failed");
  INFO("line: " << line);
  CHECK(line.find(" error listener 'http': the eBPF balancer failed: eBPF steering: cannot load the program: "
                  "operation not permitted") != std::string::npos);
  CHECK(line.find("the sampler balances it instead: the master reads /proc every 1ms while a worker is busy "
                  "(every 200ms while all wait), which costs CPU and balances less evenly") != std::string::npos);
  CHECK(line.find("ignoring") == std::string::npos);

  // Status says who balances now, and why.
  const auto status = status_of(*d);
  REQUIRE(status);
  const auto& listener = (*status)["listeners"][0];
  INFO(listener.dump());
  CHECK(listener.value("balance", "") == "load");
  CHECK(listener.value("balanced_by", "") == "sampler");
  CHECK(listener.value("ebpf_error", "").find("eBPF steering: cannot load the program: operation not permitted") == 0);
  CHECK_FALSE(listener.contains("steered"));
  const auto table = ctl(*d, {"status"});
  INFO(table.out);
  CHECK(table.out.find("reuseport (load, sampler)") != std::string::npos);
  CHECK(table.out.find("listener 'http': the eBPF balancer failed, the master's sampler balances it: eBPF steering: "
                       "cannot load the program: operation not permitted") != std::string::npos);

  // /metrics: 0 for "not balanced by the program".
  const auto metrics = http_get(metrics_port, "/metrics");
  REQUIRE(metrics);
  INFO(metrics->body);
  CHECK(metrics->body.find("\npreforkd_listener_ebpf{listener=\"http\"} 0\n") != std::string::npos);

  // The listener keeps serving, and steering again does not log it again.
  const auto scaled = ctl(*d, {"scale", "+1"});
  INFO(scaled.out << scaled.err);
  CHECK(scaled.exit_code == 0);
  REQUIRE(wait_workers_ready(*d, 3));
  for (int i = 0; i < 10; ++i) {
    const auto r = http_get(port, "/?ms=1");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  CHECK(d->count_log("the eBPF balancer failed") == 1);
  stop_cleanly(*d);
}
