// sd_notify attribution: each worker run has a NOTIFY_SOCKET of its own, and a message
// counts for the run whose socket it reaches, never for the pid it names. A worker
// running as root (no worker.user) may put any pid in its SCM_CREDENTIALS; it still
// cannot make another slot ready or set its STATUS=.

#include "control_helpers.hpp"
#include "harness.hpp"
#include "systemd_helpers.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <set>
#include <unistd.h>

using namespace bt;

namespace {

const nlohmann::json* slot_of(const nlohmann::json& status, int slot) {
  for (const auto& w : status["workers"])
    if (w["slot"] == slot) return &w;
  return nullptr;
}

}  // namespace

TEST_CASE("a notify message counts for the slot whose socket it reaches and not for the pid it names", "[notify]") {
  // Only root may send credentials naming another process: that is the case to guard.
  INFO("this test must run as root: only root can put another process's pid in SCM_CREDENTIALS");
  REQUIRE(::geteuid() == 0);
  const TempDir pids("preforkd-notify-pids");
  const int port = free_port();
  // Slot 1 never notifies; slot 0 first sends READY=1 and a STATUS= with credentials naming
  // slot 1's pid, then its own READY=1 on the same socket.
  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .ready = "notify",
                 .worker = "ready_timeout = \"300s\"\n",
                 .command = {fixture("notify_fixture"), "--pid-dir", pids.path(), "--quiet-slot", "1", "--forge-for",
                             "1"}}));

  // The forged message was sent (as root the kernel lets it name slot 1's pid).
  REQUIRE(d.wait_log("sent READY=1 claiming pid"));
  // Slot 0's own READY=1 still works; it came after the forged one on the same socket, so
  // by the time slot 0 is ready the master has read both.
  std::optional<nlohmann::json> status;
  REQUIRE(wait_until([&] {
    status = sd::status_json(d);
    const nlohmann::json* w0 = status ? slot_of(*status, 0) : nullptr;
    return w0 != nullptr && (*w0)["state"] == "ready";
  }));
  INFO(status->dump() << "\nlog:\n" << d.log());
  const nlohmann::json* w1 = slot_of(*status, 1);
  REQUIRE(w1 != nullptr);
  pid_t named = 0;
  std::ifstream(pids.file("slot-1.pid")) >> named;
  REQUIRE(named > 0);
  CHECK((*w1)["pid"] == named);
  CHECK((*w1)["state"] == "starting");
  CHECK((*w1)["notify_status"] == "");
  CHECK((*status)["master"]["workers_ready"] == 1);
  // The operator is told a message was refused, naming the pid it claimed.
  CHECK(d.wait_log("dropped a notify message from pid " + std::to_string(named)));

  const CtlResult check = ctl(d, {"check"}, 30s);
  INFO("check: " << check.exit_code << "\n" << check.out << check.err);
  CHECK(check.exit_code == 1);
  CHECK(check.out.find("2/2") == std::string::npos);

  // Still so a little later (the datagrams are read; nothing else will come).
  const auto later = sd::status_json(d);
  REQUIRE(later);
  CHECK((*slot_of(*later, 1))["state"] == "starting");

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("each worker run gets a NOTIFY_SOCKET of its own", "[notify]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 3, .ready = "notify"}));
  REQUIRE(wait_workers_ready(d, 3));
  const auto envs = env_of_workers(port, 3);
  std::set<std::string> sockets;
  const std::string prefix = "@preforkd/" + std::to_string(d.pid()) + "/notify/";
  for (std::size_t slot = 0; slot < envs.size(); ++slot) {
    INFO(envs[slot].dump());
    REQUIRE(envs[slot]["env"].contains("NOTIFY_SOCKET"));
    const std::string address = envs[slot]["env"]["NOTIFY_SOCKET"].get<std::string>();
    CHECK(address.rfind(prefix + std::to_string(slot) + ".", 0) == 0);
    sockets.insert(address);
  }
  CHECK(sockets.size() == 3);

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}
