// Bad input never takes the master down (issue 13): a reload of a file built to crash the
// parser fails with a message, and every worker keeps running; --check says why instead of
// dying with SIGSEGV.

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "control_helpers.hpp"

using namespace bt;

namespace {

std::string repeat(const std::string& part, std::size_t n, const std::string& sep = "") {
  std::string out;
  out.reserve(n * (part.size() + sep.size()));
  for (std::size_t i = 0; i < n; ++i) out += (i == 0 ? "" : sep) + part;
  return out;
}

// Each of these overflowed the stack inside toml++ before the fix, in --check (exit 139)
// and in a reload (the master died, and every worker with it).
std::vector<std::pair<std::string, std::string>> crashing_inputs() {
  return {
      {"dotted key", repeat("a", 100000, ".") + " = 1\n"},
      {"table header", std::string("[").append(repeat("b", 60000, ".")).append("]\n")},
      {"inline arrays", "deep = " + repeat("[", 100000) + repeat("]", 100000) + "\n"},
      {"inline tables", "deep = " + repeat("{ a = ", 60000) + "1" + repeat("}", 60000) + "\n"},
  };
}

const std::string too_deep = "nested more than 16 levels deep";

}  // namespace

TEST_CASE("a reload of a file nested too deep fails and every worker keeps running", "[control]") {
  const int port = free_port();
  const std::string good = toml({.address = local_address(port), .count = 2});
  Daemon d(good);
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto pids = pids_in(*before);

  for (const auto& [name, input] : crashing_inputs()) {
    INFO(name);
    rewrite_config(d, good + "\n" + input);
    const CtlResult r = ctl(d, {"reload"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err.substr(0, 2000));
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(d.config_path() + ":") != std::string::npos);
    CHECK(r.err.find(too_deep) != std::string::npos);
    REQUIRE(d.running());
    const auto after = status_of(d);
    REQUIRE(after);  // the master answers
    CHECK(pids_in(*after) == pids);
  }
  CHECK(hello(port));
  rewrite_config(d, good);
  stop_cleanly(d);
}

TEST_CASE("preforkd --check reports nesting too deep with its place instead of crashing", "[config]") {
  TempDir dir;
  const std::string header = toml({.address = local_address(free_port()), .count = 1});
  for (const auto& [name, input] : crashing_inputs()) {
    INFO(name);
    std::string file = name + ".toml";
    std::replace(file.begin(), file.end(), ' ', '-');
    dir.write(file, header + "\n" + input);
    const std::string path = dir.file(file);
    const auto [code, out] = run_preforkd({"--config", path, "--check"});
    INFO(out.substr(0, 2000));
    CHECK(code == 78);
    CHECK(out.rfind(path + ":", 0) == 0);
    CHECK(out.find(too_deep) != std::string::npos);
  }
}

TEST_CASE("too few file descriptors for the workers: start-up refuses - naming the numbers", "[config]") {
  // Issue 13: with `ulimit -n 64` and count = 32 the master ran degraded forever at 3/32.
  // Before the fix `timeout` had to stop it (exit 124).
  TempDir dir;
  const int port = free_port();
  dir.write("app.toml", toml({.address = local_address(port), .count = 32}));
  const std::string out = dir.file("out");
  const std::string command = "timeout 60 prlimit --nofile=64:64 " + std::string(PREFORKD_BIN) + " --config " +
                              dir.file("app.toml") + " >" + out + " 2>&1";
  const int status = std::system(command.c_str());
  REQUIRE(WIFEXITED(status));
  std::ifstream in(out);
  const std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO(log);
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(log.find("32 workers need about 164 file descriptors") != std::string::npos);
  CHECK(log.find("the limit (RLIMIT_NOFILE) is 64 (hard limit 64)") != std::string::npos);
  CHECK_FALSE(hello(port, 1s));  // nothing listens

  // With a soft limit too low and a hard limit high enough, the soft limit is raised and
  // the workers start. (In the background, through a shell: our own limit stays as it is.)
  dir.write("small.toml", toml({.address = local_address(port), .count = 2}));
  const std::string pid_file = dir.file("pid");
  REQUIRE(std::system(("prlimit --nofile=16:20000 " + std::string(PREFORKD_BIN) + " --config " + dir.file("small.toml") +
                       " >" + dir.file("small.out") + " 2>&1 & echo $! >" + pid_file)
                          .c_str()) == 0);
  std::ifstream pid_in(pid_file);
  pid_t pid = -1;
  pid_in >> pid;
  REQUIRE(pid > 0);
  const bool answered = wait_until([&] { return hello(port, 2s).has_value(); });
  ::kill(pid, SIGTERM);
  CHECK(wait_until([&] { return !process_alive(pid); }));
  CHECK(no_process_left(pid));
  CHECK(answered);
}

TEST_CASE("preforkd --check finds an unknown user or group or program with its place", "[config]") {
  TempDir dir;
  dir.write("app.toml",
            "[preforkd]\ncontrol_group = \"nosuchgroup\"\n"
            "[worker]\ncommand = [\"/nonexistent/server\"]\nuser = \"nosuchuser\"\n");
  const auto [code, out] = run_preforkd({"--config", dir.file("app.toml"), "--check"});
  INFO(out);
  CHECK(code == 78);
  const std::string file = dir.file("app.toml");
  CHECK(out.find(file + ":2:17: preforkd.control_group: unknown group \"nosuchgroup\"\n") != std::string::npos);
  CHECK(out.find(file + ":4:12: worker.command[0]: cannot run \"/nonexistent/server\": ") != std::string::npos);
  CHECK(out.find(file + ":5:8: worker.user: unknown user \"nosuchuser\"\n") != std::string::npos);

  dir.write("path.toml", "[worker]\ncommand = [\"no-such-program-anywhere\"]\n");
  const auto [code2, out2] = run_preforkd({"--config", dir.file("path.toml"), "--check"});
  INFO(out2);
  CHECK(code2 == 78);
  CHECK(out2.find(dir.file("path.toml") + ":2:12: worker.command[0]: cannot run \"no-such-program-anywhere\": not found in PATH") !=
        std::string::npos);
}
