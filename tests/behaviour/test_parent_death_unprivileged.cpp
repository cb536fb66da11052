// The parent-death signal survives the privilege drop: PR_SET_PDEATHSIG is cleared by a
// change of credentials, so preforkd sets it after setuid. kill -9 of a root master then
// still kills workers running as nobody, also without worker cgroups (nothing else would).

#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>

#include "../support/skip.hpp"
#include "control_helpers.hpp"

using namespace bt;

TEST_CASE("kill -9 of the master kills its workers also when they run as nobody", "[privileges]") {
  if (::geteuid() != 0) SKIP_OR_FAIL("dropping privileges needs a master running as root");
  const int port = free_port();
  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .worker = "user = \"nobody\"\ngroup = \"nogroup\"\n",
                 .preforkd = "worker_cgroups = \"off\"\n"}));
  INFO(d.log());
  const auto s = wait_workers_ready(d, 2);
  REQUIRE(s);
  const auto workers = pids_in(*s);
  for (const pid_t w : workers) REQUIRE(process_alive(w));

  d.signal(SIGKILL);
  REQUIRE(d.wait_exit() == 128 + SIGKILL);
  for (const pid_t w : workers) {
    INFO("worker " << w);
    CHECK(wait_until([&] { return !process_alive(w); }));
  }
  CHECK(no_process_left(d.pid()));
  CHECK_FALSE(hello(port, 2s));
}
