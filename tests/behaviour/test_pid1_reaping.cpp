// preforkd as PID 1 of a PID namespace (a container's entrypoint) reaps every zombie: a
// worker's orphaned grandchild is re-parented to it, and once that orphan exits it leaves
// no zombie behind.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/skip.hpp"
#include "control_helpers.hpp"

using namespace bt;

namespace {

struct ProcStat {
  pid_t pid = -1;
  std::string comm;
  char state = '?';
  pid_t ppid = -1;
};

std::optional<ProcStat> proc_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  const auto open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  ProcStat s;
  s.pid = pid;
  s.comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 1));
  rest >> s.state >> s.ppid;
  return s;
}

// The processes whose parent is `parent`, zombies included.
std::vector<ProcStat> children_of(pid_t parent) {
  std::vector<ProcStat> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (auto s = proc_stat(static_cast<pid_t>(std::stol(name))); s && s->ppid == parent) out.push_back(*s);
  }
  return out;
}

// "NSpid:" of /proc/<pid>/status: the pid in each namespace, outermost first.
std::string nspid(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("NSpid:", 0) == 0) return line.substr(6);
  return "";
}

// `unshare --pid --fork --mount-proc preforkd --config …`: preforkd is the namespace's
// PID 1. Killing it (the destructor) kills everything in the namespace with it, and
// --kill-child kills it should unshare die first.
class NamespacedPreforkd {
 public:
  NamespacedPreforkd(const TempDir& dir, const std::string& config) : log_(dir.file("log")) {
    dir.write("app.toml", config);
    std::vector<std::string> args{"/usr/bin/unshare", "--pid",      "--fork",   "--kill-child",
                                  "--mount-proc",     PREFORKD_BIN, "--config", dir.file("app.toml")};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    if (::posix_spawn(&unshare_, argv[0], &actions, &attr, argv.data(), environ) != 0) unshare_ = -1;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
  }
  ~NamespacedPreforkd() {
    if (unshare_ <= 0 || exited_) return;
    if (const pid_t p = preforkd(); p > 0) ::kill(p, SIGKILL);
    ::kill(unshare_, SIGKILL);
    ::waitpid(unshare_, nullptr, 0);
  }
  NamespacedPreforkd(const NamespacedPreforkd&) = delete;
  NamespacedPreforkd& operator=(const NamespacedPreforkd&) = delete;

  // preforkd's pid as this test sees it: unshare's only child.
  [[nodiscard]] pid_t preforkd() const {
    for (const auto& c : children_of(unshare_)) return c.pid;
    return -1;
  }
  [[nodiscard]] std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // unshare's exit code (preforkd's), or nullopt on timeout.
  std::optional<int> wait_exit() {
    int status = 0;
    if (!wait_until([&] { return ::waitpid(unshare_, &status, WNOHANG) == unshare_; })) return std::nullopt;
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  [[nodiscard]] bool started() const { return unshare_ > 0; }

 private:
  std::string log_;
  pid_t unshare_ = -1;
  bool exited_ = false;
};

}  // namespace

TEST_CASE("as PID 1 of a PID namespace preforkd reaps the orphans its workers leave", "[pid1]") {
  if (::geteuid() != 0) SKIP_OR_FAIL("a new PID namespace needs root (CAP_SYS_ADMIN)");
  const int port = free_port();
  TempDir dir("preforkd-pid1");
  // Each worker leaves an orphan: the subshell starts `sleep` in the background and exits,
  // so the sleep is re-parented to PID 1 (preforkd); then the worker execs the demo server.
  const std::string script = "(sleep 2 &); exec " + demo_bin();
  DemoConfig c{.address = local_address(port),
               .count = 2,
               .preforkd = "log_level = \"debug\"\ncontrol_socket = " + toml_string(dir.file("ctl.sock")) + "\n",
               .command = {"/bin/sh", "-c", script}};
  NamespacedPreforkd ns(dir, toml(c));
  REQUIRE(ns.started());
  INFO(ns.log());
  pid_t master = -1;
  REQUIRE(wait_until([&] { return (master = ns.preforkd()) > 0 && nspid(master).ends_with("\t1"); }));
  INFO("preforkd is pid " << master << ", NSpid" << nspid(master));
  REQUIRE(distinct_workers(port, 2).size() == 2);

  // The two orphans are preforkd's children now, beside the two workers.
  std::vector<pid_t> orphans;
  CHECK(wait_until([&] {
    orphans.clear();
    for (const auto& child : children_of(master))
      if (child.comm == "sleep") orphans.push_back(child.pid);
    return orphans.size() == 2;
  }));
  // Once they exit they are reaped: no zombie is left under PID 1.
  CHECK(wait_until([&] {
    for (const auto& child : children_of(master))
      if (child.comm == "sleep" || child.state == 'Z') return false;
    return true;
  }));
  for (const pid_t orphan : orphans) CHECK_FALSE(proc_stat(orphan));
  CHECK(ns.log().find("reaped orphaned process") != std::string::npos);
  // The workers still serve.
  CHECK(distinct_workers(port, 2).size() == 2);

  REQUIRE(::kill(master, SIGTERM) == 0);
  CHECK(ns.wait_exit() == 0);
}
