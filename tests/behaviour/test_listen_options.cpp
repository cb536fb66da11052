// [[listen]] defer_accept and fastopen: set on every slot's socket (read back with
// getsockopt by the worker that got it, on fd 3), shown in status, changed by a reload,
// and refused with file:line:col for a unix socket or a bad value.

#include <catch2/catch.hpp>
#include <string>

#include "control_helpers.hpp"

using namespace bt;

namespace {

std::string sockopt_config(int port, const std::string& options) {
  return toml({.address = local_address(port), .count = 2, .command = {fixture("sockopt_worker")}}) + options;
}

std::string readback(int generation, int defer, int fastopen) {
  return "generation " + std::to_string(generation) + ": defer_accept=" + std::to_string(defer) +
         " fastopen=" + std::to_string(fastopen);
}

}  // namespace

TEST_CASE("defer_accept and fastopen are set on every worker's socket and shown in status", "[listen]") {
  const int port = free_port();
  Daemon d(sockopt_config(port, "defer_accept = \"1s\"\nfastopen = 16\n"));
  INFO(d.log());
  const auto s = wait_workers_ready(d, 2, 0);
  REQUIRE(s);
  // One line per worker, each from its own slot's socket.
  REQUIRE(wait_until([&] { return d.count_log(readback(0, 1, 16)) == 2; }));
  REQUIRE((*s)["listeners"].size() == 1);
  CHECK((*s)["listeners"][0].value("defer_accept_s", -1) == 1);
  CHECK((*s)["listeners"][0].value("fastopen", -1) == 16);
  const CtlResult table = ctl(d, {"status"});
  CHECK(table.out.find("defer_accept 1s, fastopen 16") != std::string::npos);
  stop_cleanly(d);
}

TEST_CASE("without defer_accept and fastopen both options are off", "[listen]") {
  const int port = free_port();
  Daemon d(sockopt_config(port, ""));
  INFO(d.log());
  REQUIRE(wait_workers_ready(d, 2, 0));
  REQUIRE(wait_until([&] { return d.count_log(readback(0, 0, 0)) == 2; }));
  stop_cleanly(d);
}

TEST_CASE("a reload that changes defer_accept and fastopen applies them to the held sockets", "[listen][control]") {
  const int port = free_port();
  Daemon d(sockopt_config(port, "defer_accept = \"1s\"\nfastopen = 16\n"));
  REQUIRE(wait_workers_ready(d, 2, 0));
  REQUIRE(wait_until([&] { return d.count_log(readback(0, 1, 16)) == 2; }));
  rewrite_config(d, sockopt_config(port, "fastopen = 32\n"));
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 0);
  const auto s = wait_workers_ready(d, 2, 1);
  REQUIRE(s);
  // The new workers got the same kernel sockets (the port never closed), with the new options.
  CHECK(wait_until([&] { return d.count_log(readback(1, 0, 32)) == 2; }));
  CHECK((*s)["listeners"][0].value("defer_accept_s", -1) == 0);
  CHECK((*s)["listeners"][0].value("fastopen", -1) == 32);
  stop_cleanly(d);
}

TEST_CASE("defer_accept and fastopen are refused with their place for a unix socket or a bad value", "[listen]") {
  struct Case {
    std::string address;
    std::string options;
    std::string expected;
  };
  TempDir dir;
  const std::string unix_address = "unix:" + dir.file("app.sock");
  const std::string tcp = local_address(free_port());
  const Case cases[] = {
      {unix_address, "defer_accept = \"1s\"\n", "listen[0].defer_accept: applies only to TCP listeners"},
      {unix_address, "fastopen = 4\n", "listen[0].fastopen: applies only to TCP listeners"},
      {tcp, "fastopen = -1\n", "listen[0].fastopen: must be an integer from 0 to 65535, got -1"},
      {tcp, "defer_accept = \"2h\"\n", "listen[0].defer_accept: must be from 0s to 1h"},
      {tcp, "defer_accept = 5\n", "listen[0].defer_accept:"},
  };
  for (const Case& c : cases) {
    Daemon d(toml({.address = c.address, .count = 1}) + c.options, {"--check"});
    INFO(c.options << d.log());
    CHECK(d.wait_exit() == 78);
    CHECK(d.log().find("app.toml:") != std::string::npos);
    CHECK(d.log().find(c.expected) != std::string::npos);
  }
}
