// [worker] env_file: workers see the variables of the files (systemd's EnvironmentFile=
// syntax), env on top; a "-" makes a file optional; a missing required file or a bad line
// is a config error naming the file and line; a reload re-reads the files and rolls the
// workers when what they set changed, and leaves them alone when a file went bad.

#include <catch2/catch.hpp>
#include <string>

#include "control_helpers.hpp"

using namespace bt;

namespace {

// The demo worker answers GET /env with its APP_* and DEMO_* variables.
DemoConfig with_env_files(int port, const std::string& files, const std::string& extra = "") {
  return {.address = local_address(port), .count = 2, .worker = "env_file = " + files + "\n" + extra};
}

}  // namespace

TEST_CASE("workers see the variables of two env files and env wins over them", "[env_file]") {
  TempDir files("preforkd-envfile");
  files.write("a.env",
              "# shared settings\n"
              "APP_A=from-a\n"
              "APP_B = from-a\n"
              "; a comment too\n"
              "APP_QUOTED=\"two words\"  \n"
              "APP_CONTINUED=one\\\n"
              "two\n");
  files.write("b.env", "APP_B='from-b'\nAPP_C=from-b\n");
  const int port = free_port();
  // Appended, not "[" + std::string&&: GCC 12 at -O3 reports a false -Werror=restrict.
  std::string optional_path("-");
  optional_path.append(files.file("nope.env"));
  std::string list("[");
  list.append(toml_string(files.file("a.env"))).append(", ").append(toml_string(optional_path));
  list.append(", ").append(toml_string(files.file("b.env"))).append("]");
  Daemon d(toml(with_env_files(port, list, "env = { APP_C = \"from-env\" }\n")));
  INFO(d.log());
  REQUIRE(wait_workers_ready(d, 2));
  const auto envs = env_of_workers(port, 2);
  REQUIRE(envs.size() == 2);
  for (const auto& e : envs) {
    INFO(e.dump());
    REQUIRE(e.is_object());
    CHECK(e["env"].value("APP_A", "") == "from-a");
    CHECK(e["env"].value("APP_B", "") == "from-b");  // the later file wins
    CHECK(e["env"].value("APP_QUOTED", "") == "two words");
    CHECK(e["env"].value("APP_CONTINUED", "") == "onetwo");
    CHECK(e["env"].value("APP_C", "") == "from-env");  // env wins over the files
  }
  stop_cleanly(d);
}

TEST_CASE("a missing required env file is a config error that names it", "[env_file]") {
  TempDir dir("preforkd-envfile");
  const std::string missing = dir.file("missing.env");
  dir.write("app.toml", toml(with_env_files(free_port(), toml_string(missing))));
  for (const auto& args : {std::vector<std::string>{"--check", "--config", dir.file("app.toml")},
                           std::vector<std::string>{"--config", dir.file("app.toml")}}) {
    const auto [code, out] = run_preforkd(args);
    INFO(args.front() << ": " << out);
    CHECK(code == 78);
    CHECK(out.find("worker.env_file: " + missing + ": cannot read: No such file or directory") != std::string::npos);
  }
}

TEST_CASE("a bad line in an env file is a config error with the file and line", "[env_file]") {
  TempDir dir("preforkd-envfile");
  dir.write("bad.env", "APP_OK=1\n\nexport APP_X=2\n");
  dir.write("app.toml", toml(with_env_files(free_port(), toml_string(dir.file("bad.env")))));
  const auto [code, out] = run_preforkd({"--check", "--config", dir.file("app.toml")});
  INFO(out);
  CHECK(code == 78);
  CHECK(out.find("worker.env_file: " + dir.file("bad.env") + ":3: ") != std::string::npos);
  CHECK(out.find("export") != std::string::npos);
}

TEST_CASE("a reload after an env file changed rolls the workers and the new ones see the new value", "[env_file]") {
  TempDir files("preforkd-envfile");
  files.write("app.env", "APP_VERSION=1\n");
  const int port = free_port();
  const std::string config = toml(with_env_files(port, toml_string(files.file("app.env"))));
  Daemon d(config);
  INFO(d.log());
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto old_pids = pids_in(*before);

  // The config file itself is the same: only the env file changed.
  files.write("app.env", "APP_VERSION=2\n");
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const auto after = wait_workers_ready(d, 2, 1);
  REQUIRE(after);
  const auto new_pids = pids_in(*after);
  for (const pid_t p : new_pids) CHECK(std::find(old_pids.begin(), old_pids.end(), p) == old_pids.end());
  CHECK(d.wait_log("worker.env_file"));
  const auto envs = env_of_workers(port, 2);
  for (const auto& e : envs) {
    INFO(e.dump());
    REQUIRE(e.is_object());
    CHECK(e["env"].value("APP_VERSION", "") == "2");
    CHECK(e["env"].value("PREFORK_GENERATION", "") == "1");
  }
  stop_cleanly(d);
}

TEST_CASE("a reload with a bad env file fails with its line and leaves every worker", "[env_file]") {
  TempDir files("preforkd-envfile");
  files.write("app.env", "APP_VERSION=1\n");
  const int port = free_port();
  Daemon d(toml(with_env_files(port, toml_string(files.file("app.env")))));
  INFO(d.log());
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto pids = pids_in(*before);

  files.write("app.env", "APP_VERSION=2\nAPP_BROKEN\n");
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("worker.env_file: " + files.file("app.env") + ":2: expected KEY=VALUE") != std::string::npos);

  const auto after = wait_workers_ready(d, 2, 0);
  REQUIRE(after);
  CHECK(pids_in(*after) == pids);
  for (const auto& e : env_of_workers(port, 2)) CHECK(e["env"].value("APP_VERSION", "") == "1");
  stop_cleanly(d);
}
