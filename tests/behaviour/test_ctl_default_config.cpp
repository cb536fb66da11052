// preforkctl without --config or --socket: $PREFORKD_CONFIG names the config, else the
// only *.toml in /etc/preforkd ($PREFORKD_CONFIG_DIR here); with several it lists them and
// exits 2.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "control_helpers.hpp"

using namespace bt;

TEST_CASE("preforkctl status finds the daemon through PREFORKD_CONFIG or the only toml of the directory", "[control]") {
  Daemon d(toml({.address = local_address(free_port()), .count = 1}));
  REQUIRE(wait_workers_ready(d, 1));
  const std::string runtime = "RUNTIME_DIRECTORY=" + d.dir().path();
  TempDir empty("preforkd-noconfigs");
  // An empty directory: PREFORKD_CONFIG alone decides.
  CtlResult r = run_ctl({"--json", "status"}, ctl_deadline,
                        {runtime, "PREFORKD_CONFIG=" + d.config_path(), "PREFORKD_CONFIG_DIR=" + empty.path()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out).at("master").at("pid").get<int>() == d.pid());

  // The daemon's directory holds one toml: its config.
  r = run_ctl({"--json", "status"}, ctl_deadline,
              {runtime, "PREFORKD_CONFIG=", "PREFORKD_CONFIG_DIR=" + d.dir().path()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out).at("master").at("pid").get<int>() == d.pid());
  stop_cleanly(d);
}

TEST_CASE("preforkctl without a config lists the tomls it found and exits 2", "[control]") {
  TempDir dir("preforkd-configs");
  dir.write("api.toml", "");
  dir.write("web.toml", "");
  CtlResult r = run_ctl({"status"}, ctl_deadline, {"PREFORKD_CONFIG=", "PREFORKD_CONFIG_DIR=" + dir.path()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("has 2 configs (api.toml, web.toml)") != std::string::npos);
  CHECK(r.err.find("--config " + dir.file("api.toml")) != std::string::npos);

  TempDir empty("preforkd-noconfigs");
  r = run_ctl({"status"}, ctl_deadline, {"PREFORKD_CONFIG=", "PREFORKD_CONFIG_DIR=" + empty.path()});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("has no *.toml") != std::string::npos);
}
