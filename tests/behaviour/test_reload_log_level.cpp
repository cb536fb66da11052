// preforkd.log_level: a reload applies it at once, without new workers; down again too.

#include <catch2/catch.hpp>
#include <string>

#include "control_helpers.hpp"

using namespace bt;

TEST_CASE("a reload that changes log_level applies it at once without new workers", "[control]") {
  // Each control request is logged at debug level: "control socket: status request".
  const std::string debug_line = "control socket: status request";
  DemoConfig c{.address = local_address(free_port()), .count = 1, .preforkd = "log_level = \"info\"\n"};
  Daemon d(toml(c));
  const auto before = wait_workers_ready(d, 1);
  REQUIRE(before);
  REQUIRE(status_of(d));
  INFO(d.log());
  CHECK(d.count_log(debug_line) == 0);

  c.preforkd = "log_level = \"debug\"\n";
  rewrite_config(d, toml(c));
  REQUIRE(ctl(d, {"reload"}).exit_code == 0);
  REQUIRE(status_of(d));
  CHECK(d.wait_log(debug_line));
  const int at_debug = d.count_log(debug_line);
  CHECK(at_debug >= 1);

  // And back: info again, no more debug lines.
  c.preforkd = "log_level = \"info\"\n";
  rewrite_config(d, toml(c));
  REQUIRE(ctl(d, {"reload"}).exit_code == 0);
  const int after_reload = d.count_log(debug_line);  // the reload request itself may be logged
  for (int i = 0; i < 3; ++i) REQUIRE(status_of(d));
  CHECK(d.count_log(debug_line) == after_reload);

  // Policy only: the worker was not replaced.
  const auto after = wait_workers_ready(d, 1);
  REQUIRE(after);
  CHECK(pids_in(*after) == pids_in(*before));
  stop_cleanly(d);
}
