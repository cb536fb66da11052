// In-place upgrade (preforkctl upgrade, SIGUSR2): the master execs the binary now at its
// path and carries on as the same process, with the same workers and the same sockets.
// A preflight that fails and an exec that fails leave the old master serving.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "control_helpers.hpp"

using namespace bt;
using nlohmann::json;

namespace {

// The program preforkd runs from, in a directory of its own, so that a test can replace
// the file the way a package does (a new file renamed over it).
class Installed {
 public:
  Installed() : dir_("preforkd-upgrade") { put(PREFORKD_BIN); }
  [[nodiscard]] std::string path() const { return dir_.file("preforkd"); }
  // Copies `from` next to the program and renames it over: the running master's
  // /proc/self/exe then reads "(deleted)", its path the new file.
  void put(const std::string& from) const {
    const std::string staged = dir_.file("preforkd.new");
    std::filesystem::copy_file(from, staged, std::filesystem::copy_options::overwrite_existing);
    ::chmod(staged.c_str(), 0755);
    std::filesystem::rename(staged, path());
  }
  // A shell script in place of the program.
  void put_script(const std::string& body) const {
    dir_.write("preforkd.new", "#!/bin/sh\n" + body);
    ::chmod(dir_.file("preforkd.new").c_str(), 0755);
    std::filesystem::rename(dir_.file("preforkd.new"), path());
  }

 private:
  TempDir dir_;
};

// preforkd started from `program` (the harness's Daemon always runs the build's own
// binary), on `config` in a directory of its own, its output in <dir>/log, its control
// socket <dir>/app.sock. The destructor kills it and whatever is left of its workers.
class Master {
 public:
  // `env`: more NAME=value pairs for the master's environment (which an upgrade keeps).
  Master(const std::string& program, const std::string& config,
         const std::vector<std::pair<std::string, std::string>>& env = {})
      : dir_("preforkd-upgrade-run") {
    dir_.write("app.toml", config);
    const std::string conf = dir_.file("app.toml"), log = dir_.file("log");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::setenv("RUNTIME_DIRECTORY", dir_.path().c_str(), 1);
      for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      const int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      ::execl(program.c_str(), program.c_str(), "--config", conf.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Master() {
    if (!exited_) {
      ::kill(pid_, SIGKILL);
      (void)wait_exit(30s);
    }
    wait_until([&] { return processes_of_master(pid_).empty(); }, 10s);
    for (pid_t p : processes_of_master(pid_)) ::kill(p, SIGKILL);
  }
  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::string socket() const { return dir_.file("app.sock"); }
  [[nodiscard]] std::string log() const {
    std::ifstream in(dir_.file("log"));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool wait_log(const std::string& needle) const {
    return wait_until([&] { return log().find(needle) != std::string::npos; });
  }
  [[nodiscard]] int count_log(const std::string& needle) const {
    const std::string text = log();
    int n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }
  void signal(int sig) const { ::kill(pid_, sig); }
  CtlResult ctl(const std::vector<std::string>& args) const {
    std::vector<std::string> full{"--socket", socket()};
    full.insert(full.end(), args.begin(), args.end());
    return run_ctl(full);
  }
  [[nodiscard]] std::optional<json> status() const {
    auto j = control_request(socket(), R"({"cmd":"status"})", 5s);
    if (!j || !j->is_object() || j->value("ok", false) != true) return std::nullopt;
    return j;
  }
  // Every one of `count` workers ready with a pid; the last status seen.
  [[nodiscard]] std::optional<json> wait_ready(int count) const {
    std::optional<json> last;
    const bool ok = wait_until([&] {
      auto s = status();
      if (!s) return false;
      last = s;
      const auto& workers = (*s)["workers"];
      if (!workers.is_array() || static_cast<int>(workers.size()) != count) return false;
      for (const auto& w : workers)
        if (w.value("state", "") != "ready" || w.value("pid", -1) <= 0) return false;
      return true;
    });
    if (!ok) return std::nullopt;
    return last;
  }
  std::optional<int> wait_exit(Ms deadline) {
    int status = 0;
    if (!wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, deadline)) return std::nullopt;
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // SIGTERM: exits 0 and leaves no process behind.
  void stop_cleanly() {
    signal(SIGTERM);
    CHECK(wait_exit(60s) == std::optional<int>(0));
    CHECK(no_process_left(pid_));
  }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  bool exited_ = false;
};

// What the master's fds point to: "socket:[123]", "anon_inode:[eventpoll]", a path...
std::multiset<std::string> fd_targets(pid_t pid) {
  std::multiset<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    char buf[512];
    const ssize_t n = ::readlink(e.path().c_str(), buf, sizeof buf - 1);
    if (n > 0) out.emplace(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// The fds once the master holds only its own sockets: two worker sockets (two slots of
// one reuseport listener) and the control socket (no notify sockets: these workers do not
// speak sd_notify); a control connection it is closing (a status request just answered)
// is gone by then.
constexpr std::size_t own_sockets = 3;
std::multiset<std::string> settled_fd_targets(pid_t pid) {
  std::multiset<std::string> last;
  wait_until([&] {
    last = fd_targets(pid);
    std::size_t sockets = 0;
    for (const auto& t : last) sockets += t.starts_with("socket:") ? 1 : 0;
    return sockets == own_sockets;
  });
  return last;
}

std::set<std::string> sockets_in(const std::multiset<std::string>& targets) {
  std::set<std::string> out;
  for (const auto& t : targets)
    if (t.starts_with("socket:")) out.insert(t);
  return out;
}

bool has_memfd(const std::multiset<std::string>& targets) {
  return std::ranges::any_of(targets, [](const std::string& t) { return t.find("memfd:") != std::string::npos; });
}

DemoConfig demo(int port, int count) { return {.address = local_address(port), .count = count}; }

}  // namespace

TEST_CASE("20 upgrades in place under load keep the master and its workers and its sockets", "[upgrade]") {
  const int port = free_port();
  Installed program;
  Master d(program.path(), toml(demo(port, 2)));
  const auto before = d.wait_ready(2);
  REQUIRE(before);
  const auto pids = pids_in(*before);
  const std::string old_version = (*before)["master"]["version"].get<std::string>();
  REQUIRE(distinct_workers(port, 2).size() == 2);
  const auto fds_before = settled_fd_targets(d.pid());
  REQUIRE(sockets_in(fds_before).size() == own_sockets);

  LoadClient load(port);
  REQUIRE(load.wait_answered(20));
  for (int i = 0; i < 20; ++i) {
    INFO("upgrade " << i + 1);
    const auto r = d.ctl({"upgrade"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("upgraded from " + old_version + " to " + old_version) != std::string::npos);
    REQUIRE(load.wait_answered(5));
  }
  // Once more, to a build that says another version.
  program.put(PREFORKD_NEXT_BIN);
  const auto next = d.ctl({"upgrade"});
  CHECK(next.exit_code == 0);
  CHECK(next.out.find("upgraded from " + old_version + " to " + old_version + "+next") != std::string::npos);
  REQUIRE(load.wait_answered(20));
  const auto stats = load.stop();
  INFO(describe(stats));
  CHECK(stats.failed == 0);
  CHECK(stats.answered > 0);

  const auto after = d.wait_ready(2);
  REQUIRE(after);
  CHECK((*after)["master"]["pid"].get<int>() == d.pid());
  CHECK((*after)["master"]["version"].get<std::string>() == old_version + "+next");
  CHECK(pids_in(*after) == pids);
  CHECK(d.count_log("upgraded from") == 21);
  // The same sockets, and nothing more: the state memfd and the old image's own fds
  // (its event loop, its signal pipes) did not survive the exec. (Fewer is fine: the
  // exec-report pipes of workers that exec'd long ago are not handed over.)
  CHECK(wait_until([&] {
    const auto now = settled_fd_targets(d.pid());
    return sockets_in(now) == sockets_in(fds_before) && now.size() <= fds_before.size();
  }));
  const auto fds_after = settled_fd_targets(d.pid());
  INFO("before: " << fds_before.size() << " fds, after: " << fds_after.size());
  CHECK(sockets_in(fds_after) == sockets_in(fds_before));
  CHECK(fds_after.size() <= fds_before.size());
  CHECK_FALSE(has_memfd(fds_after));
  d.stop_cleanly();
}

TEST_CASE("SIGUSR2 upgrades and a worker killed during the upgrade is replaced by the new image", "[upgrade]") {
  const int port = free_port();
  Installed program;
  Master d(program.path(), toml(demo(port, 2)));
  const auto before = d.wait_ready(2);
  REQUIRE(before);
  const auto pids = pids_in(*before);
  // The worker dies while the master runs the preflight or execs: its exit reaches the
  // new image as a zombie child, or the old one handles it first; either way it is
  // replaced and the other worker is kept.
  REQUIRE(::kill(pids[0], SIGKILL) == 0);
  d.signal(SIGUSR2);
  REQUIRE(d.wait_log("upgraded from"));
  REQUIRE(wait_until([&] {
    const auto s = d.status();
    if (!s) return false;
    const auto now = pids_in(*s);
    return now.size() == 2 && now[0] > 0 && now[0] != pids[0] && (*s)["workers"][0]["state"] == "ready";
  }));
  const auto after = d.wait_ready(2);
  REQUIRE(after);
  CHECK(pids_in(*after)[1] == pids[1]);
  CHECK((*after)["master"]["pid"].get<int>() == d.pid());
  CHECK(d.wait_log("exited on signal 9"));
  CHECK(distinct_workers(port, 2).size() == 2);
  d.stop_cleanly();
}

TEST_CASE("an upgrade keeps each worker run's own notify socket", "[upgrade]") {
  const int port = free_port();
  Installed program;
  DemoConfig config = demo(port, 2);
  config.ready = "notify";
  config.worker = "watchdog = \"1s\"\n";
  Master d(program.path(), toml(config));
  const auto before = d.wait_ready(2);
  REQUIRE(before);
  const auto pids = pids_in(*before);
  const auto envs = env_of_workers(port, 2);
  REQUIRE(envs[0]["env"].contains("NOTIFY_SOCKET"));
  const std::string slot0_socket = envs[0]["env"]["NOTIFY_SOCKET"].get<std::string>();
  CHECK(slot0_socket != envs[1]["env"]["NOTIFY_SOCKET"].get<std::string>());

  const auto r = d.ctl({"upgrade"});
  INFO(r.out << r.err << "\nlog:\n" << d.log());
  REQUIRE(r.exit_code == 0);
  // WATCHDOG=1 still reaches the new image on each run's socket: the same workers outlive
  // three watchdog periods after the upgrade.
  const auto upgraded_at = std::chrono::steady_clock::now();
  REQUIRE(wait_until([&] {
    const auto s = d.status();
    return s && pids_in(*s) == pids && std::chrono::steady_clock::now() - upgraded_at > 3s;
  }));
  CHECK(d.count_log("watchdog timeout") == 0);
  // A replacement in the same run gets the run's socket, which the new image serves:
  // its READY=1 arrives there.
  REQUIRE(::kill(pids[0], SIGKILL) == 0);
  REQUIRE(wait_until([&] {
    const auto s = d.status();
    if (!s) return false;
    const auto now = pids_in(*s);
    return now.size() == 2 && now[0] > 0 && now[0] != pids[0] && (*s)["workers"][0]["state"] == "ready";
  }));
  const auto envs_after = env_of_workers(port, 2);
  CHECK(envs_after[0]["env"]["NOTIFY_SOCKET"] == slot0_socket);
  CHECK(pids_in(*d.status())[1] == pids[1]);
  d.stop_cleanly();
}

TEST_CASE("a failed preflight leaves the running master as it was and says why", "[upgrade]") {
  const int port = free_port();
  Installed program;
  Master d(program.path(), toml(demo(port, 2)));
  const auto before = d.wait_ready(2);
  REQUIRE(before);
  const auto pids = pids_in(*before);

  program.put_script("echo 'this is no preforkd' >&2\nexit 1\n");
  auto r = d.ctl({"upgrade"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("preflight: '" + program.path() + "' exited with status 1: this is no preforkd") != std::string::npos);

  // A binary that passes its check but reads another state format is refused too.
  program.put_script("echo \"$2: ok\"\necho 'state-format: 99'\necho 'version: 9.9'\n");
  r = d.ctl({"upgrade"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("does not read state format 2 (it reads 99)") != std::string::npos);

  // SIGUSR2 fails the same way, in the log.
  d.signal(SIGUSR2);
  CHECK(d.wait_log("upgrade failed: preflight"));

  const auto after = d.wait_ready(2);
  REQUIRE(after);
  CHECK(pids_in(*after) == pids);
  CHECK((*after)["master"]["pid"].get<int>() == d.pid());
  CHECK(d.count_log("upgraded from") == 0);
  CHECK(distinct_workers(port, 2).size() == 2);
  d.stop_cleanly();
}

TEST_CASE("an exec that fails leaves the old image running with its fds and signals as they were", "[upgrade]") {
  const int port = free_port();
  Installed program;
  Master d(program.path(), toml(demo(port, 2)));
  const auto before = d.wait_ready(2);
  REQUIRE(before);
  const auto pids = pids_in(*before);
  const auto fds_before = settled_fd_targets(d.pid());
  REQUIRE(sockets_in(fds_before).size() == own_sockets);

  // Passes its check, then takes away its own execute permission: the exec itself fails.
  program.put_script("echo \"$2: ok\"\necho 'state-format: 1,2'\necho 'version: 9.9'\nchmod a-x \"$0\"\n");
  const auto r = d.ctl({"upgrade"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("cannot execute '" + program.path() + "': Permission denied; the running preforkd carries on") !=
        std::string::npos);

  // Serving, with the same fds (CLOEXEC back, the memfd closed) ...
  CHECK(distinct_workers(port, 2).size() == 2);
  CHECK(sockets_in(settled_fd_targets(d.pid())) == sockets_in(fds_before));
  CHECK_FALSE(has_memfd(fd_targets(d.pid())));
  const auto after = d.wait_ready(2);
  REQUIRE(after);
  CHECK(pids_in(*after) == pids);
  // ... and signals unblocked: a killed worker is reaped and replaced.
  REQUIRE(::kill(pids[1], SIGKILL) == 0);
  CHECK(wait_until([&] {
    const auto s = d.status();
    return s && pids_in(*s).size() == 2 && pids_in(*s)[1] > 0 && pids_in(*s)[1] != pids[1] &&
           (*s)["workers"][1]["state"] == "ready";
  }));
  d.stop_cleanly();
}

TEST_CASE("a preflight given a state it cannot parse refuses the upgrade and the old image keeps serving",
          "[upgrade]") {
  const int port = free_port();
  Installed program;
  Master d(program.path(), toml(demo(port, 2)));
  const auto before = d.wait_ready(2);
  REQUIRE(before);
  const auto pids = pids_in(*before);

  // The real build, whose check run reads a broken document instead of the master's state.
  program.put_script(std::string("case \" $* \" in *\" --check \"*) exec ") + PREFORKD_BIN +
                     " \"$@\" <<'EOF'\n{\"format\": 1, \"version\": \nEOF\n;;\nesac\nexec " + PREFORKD_BIN +
                     " \"$@\"\n");
  const auto r = d.ctl({"upgrade"});
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("preflight: '" + program.path() + "' exited with status 1") != std::string::npos);
  CHECK(r.err.find("the running master's state: upgrade state") != std::string::npos);

  const auto after = d.wait_ready(2);
  REQUIRE(after);
  CHECK(pids_in(*after) == pids);
  CHECK((*after)["master"]["pid"].get<int>() == d.pid());
  CHECK(d.count_log("upgraded from") == 0);
  CHECK(distinct_workers(port, 2).size() == 2);
  d.stop_cleanly();
}

TEST_CASE("a new image that fails after the exec exits non-zero so that a service manager restarts it",
          "[upgrade]") {
  const int port = free_port();
  Installed program;
  // preforkd_next fails right after it has taken its state when this is set; the running
  // build ignores it, and the exec keeps the environment.
  Master d(program.path(), toml(demo(port, 2)), {{"PREFORKD_NEXT_FAIL_AFTER_RESUME", "1"}});
  REQUIRE(d.wait_ready(2));
  program.put(PREFORKD_NEXT_BIN);
  const auto r = d.ctl({"upgrade"});
  INFO(r.out << r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("the new image cannot carry on") != std::string::npos);
  const auto code = d.wait_exit(30s);
  INFO(d.log());
  REQUIRE(code);
  CHECK(*code == 1);  // not 0: systemd's Restart=on-failure restarts it
  CHECK(d.log().find("upgrade: the new image cannot carry on: PREFORKD_NEXT_FAIL_AFTER_RESUME is set") !=
        std::string::npos);
  CHECK(no_process_left(d.pid()));
}
