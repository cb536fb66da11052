// `preforkctl --config FILE` when FILE has been broken since the daemon read it: it needs
// only the control socket's path, so it falls back to FILE's control_socket key or the
// default path for FILE, says so on stderr, and talks to the running daemon. A reload
// still reports the errors, from the daemon.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "control_helpers.hpp"

using namespace bt;

namespace {

// The config with `count = 2` made `count = 0`: valid TOML, an invalid config.
std::string broken(std::string config) {
  const auto at = config.find("count = 2");
  REQUIRE(at != std::string::npos);
  config.replace(at, 9, "count = 0");
  return config;
}

}  // namespace

TEST_CASE("preforkctl --config falls back to the default socket when the file has errors", "[control]") {
  const int port = free_port();
  const std::string good = toml({.address = local_address(port), .count = 2});
  Daemon d(good);
  REQUIRE(wait_workers_ready(d, 2, 0));
  rewrite_config(d, broken(good));
  const std::vector<std::string> env{"RUNTIME_DIRECTORY=" + d.dir().path()};

  const CtlResult r = run_ctl({"--config", d.config_path(), "--json", "status"}, ctl_deadline, env);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out).at("master").at("pid").get<int>() == d.pid());
  // It says that it fell back, why, and where it went.
  // Appended, not "'" + std::string&&: GCC 12 at -O3 reports a false -Werror=restrict.
  CHECK(r.err.find(std::string("'").append(d.config_path()).append("' has errors")) != std::string::npos);
  CHECK(r.err.find("worker.count") != std::string::npos);
  CHECK(r.err.find("the default control socket") != std::string::npos);
  CHECK(r.err.find(control_socket(d)) != std::string::npos);

  SECTION("scale works through the fallback too") {
    const CtlResult s = run_ctl({"--config", d.config_path(), "scale", "3"}, ctl_deadline, env);
    INFO("stdout: " << s.out << "\nstderr: " << s.err);
    CHECK(s.exit_code == 0);
    CHECK(wait_workers_ready(d, 3, 0));
  }
  SECTION("reload reports the errors, from the daemon") {
    const CtlResult s = run_ctl({"--config", d.config_path(), "reload"}, ctl_deadline, env);
    INFO("stdout: " << s.out << "\nstderr: " << s.err);
    CHECK(s.exit_code == 1);
    CHECK(s.err.find(d.config_path() + ":") != std::string::npos);
    CHECK(s.err.find(": worker.count: ") != std::string::npos);
  }
  stop_cleanly(d);
}

TEST_CASE("preforkctl --config falls back to the file's control_socket key when it can be read", "[control]") {
  const int port = free_port();
  TempDir elsewhere;
  const std::string socket = elsewhere.file("ctl.sock");
  const std::string good =
      toml({.address = local_address(port), .count = 2, .preforkd = "control_socket = " + toml_string(socket) + "\n"});
  Daemon d(good);
  // The daemon answers on its configured socket (wait_workers_ready knows only the default).
  REQUIRE(wait_until([&] {
    const auto reply = control_request(socket, R"({"cmd":"status"})");
    return reply && reply->value("ok", false);
  }));
  rewrite_config(d, broken(good));

  // No RUNTIME_DIRECTORY: the default path would not lead to this daemon.
  const CtlResult r = run_ctl({"--config", d.config_path(), "--json", "status"}, ctl_deadline, {"RUNTIME_DIRECTORY="});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out).at("master").at("pid").get<int>() == d.pid());
  CHECK(r.err.find("its control_socket key '" + socket + "'") != std::string::npos);
  stop_cleanly(d);
}

TEST_CASE("preforkctl --config with a valid file says nothing about a fallback", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 1}));
  REQUIRE(wait_workers_ready(d, 1, 0));
  const CtlResult r =
      run_ctl({"--config", d.config_path(), "status"}, ctl_deadline, {"RUNTIME_DIRECTORY=" + d.dir().path()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  stop_cleanly(d);
}
