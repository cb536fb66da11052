// ready = "accepting" reads the workers' /proc files behind the kernel's ptrace access
// check. A master without CAP_SYS_PTRACE (a container's default capabilities) cannot read
// those of workers that run as another user: it must say so, once, instead of letting the
// worker be replaced after ready_timeout with nothing said about why.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../support/skip.hpp"
#include "harness.hpp"

using namespace bt;

namespace {

// preforkd started through `setpriv --bounding-set -sys_ptrace` (setpriv execs it: the pid is
// preforkd's), its output in a file; killed and reaped when the test ends, however it ends.
class PreforkdWithoutPtrace {
 public:
  PreforkdWithoutPtrace(const TempDir& dir, const std::string& config) : log_(dir.file("log")) {
    dir.write("app.toml", config);
    std::vector<std::string> args{"/usr/bin/setpriv", "--bounding-set", "-sys_ptrace", PREFORKD_BIN, "--config",
                                  dir.file("app.toml")};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    if (::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~PreforkdWithoutPtrace() {
    if (pid_ <= 0 || reaped_) return;
    ::kill(pid_, SIGKILL);  // its workers follow (PR_SET_PDEATHSIG)
    ::waitpid(pid_, nullptr, 0);
  }
  PreforkdWithoutPtrace(const PreforkdWithoutPtrace&) = delete;
  PreforkdWithoutPtrace& operator=(const PreforkdWithoutPtrace&) = delete;

  [[nodiscard]] bool started() const { return pid_ > 0; }
  [[nodiscard]] std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  [[nodiscard]] int count_log(const std::string& needle) const {
    const std::string text = log();
    int n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
    return n;
  }
  // SIGTERM, then its exit code once it is gone (nullopt on timeout).
  std::optional<int> stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    if (!wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; })) return std::nullopt;
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

}  // namespace

TEST_CASE("ready accepting without CAP_SYS_PTRACE says why it cannot see workers of another user", "[ready]") {
  if (::geteuid() != 0) SKIP_OR_FAIL("workers of another user need a master running as root");
  if (::access("/usr/bin/setpriv", X_OK) != 0) SKIP_OR_FAIL("setpriv (util-linux) is not installed");
  TempDir dir;
  DemoConfig config;
  config.address = local_address(free_port());
  config.count = 1;
  config.ready = "accepting";
  config.worker = "user = \"nobody\"\ngroup = \"nogroup\"\nready_timeout = \"60s\"\n";
  PreforkdWithoutPtrace d(dir, toml(config));
  REQUIRE(d.started());
  const std::string says = "looking into a process of another user needs CAP_SYS_PTRACE";
  const bool said = wait_until([&] { return d.count_log(says) > 0; }, 30s);
  INFO(d.log());
  CHECK(said);
  // Named with the file it could not read and the errno, once.
  CHECK(d.count_log("ready = \"accepting\" cannot see whether worker 0 (pid ") == 1);
  CHECK(d.count_log("/syscall': operation not permitted") + d.count_log("/syscall': permission denied") == 1);
  CHECK(d.stop() == 0);
}
