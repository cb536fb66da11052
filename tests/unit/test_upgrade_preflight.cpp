// The upgrade's preflight: how the new binary's check run is read. A wait that fails is an
// error that refuses the upgrade, never a status of 0.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <preforkd/daemon/upgrade/upgrade.hpp>
#include <sstream>

using namespace preforkd;

namespace {

class Dir {
 public:
  Dir() {
    char tmpl[] = "/tmp/preforkd-preflight-XXXXXX";
    path_ = ::mkdtemp(tmpl) != nullptr ? tmpl : "/tmp";
  }
  ~Dir() { std::filesystem::remove_all(path_); }
  Dir(const Dir&) = delete;
  Dir& operator=(const Dir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A stand-in for the new binary: passes its check, says it reads this master's format,
// and saves its stdin (the state it was handed) next to itself.
std::string passing_binary(const Dir& dir) {
  const std::string path = dir.file("new-preforkd");
  std::ofstream(path) << "#!/bin/sh\ncat > \"$(dirname \"$0\")/state.json\"\necho \"$3: ok\"\n"
                      << "echo 'state-format: " << master_state_format << "'\necho 'version: 9.9'\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

MasterState some_state() {
  MasterState s;
  s.version = "0.1.0";
  s.config_path = "/etc/preforkd/app.toml";
  s.target_count = 1;
  s.listeners.push_back({"http", "127.0.0.1:8080", {7}, "", 0, 0});
  SlotState slot;
  slot.run.life.state = WorkerState::backoff;
  s.slots = {slot};
  return s;
}

}  // namespace

TEST_CASE("preflight: the check run gets the state document on its stdin and passes") {
  Dir dir;
  const auto result =
      daemon::run_preflight(passing_binary(dir), "/etc/app.toml", some_state(), std::chrono::seconds(20));
  REQUIRE(result);
  CHECK(result->version == "9.9");
  const std::string handed = read_file(dir.file("state.json"));
  CHECK(handed == encode_master_state(some_state()));
}

TEST_CASE("preflight: a wait that fails refuses the upgrade instead of reading a status of 0") {
  Dir dir;
  const std::string binary = passing_binary(dir);
  // With SIGCHLD ignored the kernel reaps the check run itself: waitpid fails with ECHILD.
  struct sigaction ignore {
  }, saved{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  REQUIRE(::sigaction(SIGCHLD, &ignore, &saved) == 0);
  const auto result = daemon::run_preflight(binary, "/etc/app.toml", some_state(), std::chrono::seconds(20));
  ::sigaction(SIGCHLD, &saved, nullptr);
  REQUIRE_FALSE(result);
  CHECK(result.error().find("preflight: failed to wait for 'pid ") == 0);
  CHECK(result.error().find("': no child processes") != std::string::npos);
}
