// The log under journald and in JSON: when JOURNAL_STREAM names preforkd's stderr, every
// line begins with its syslog priority ("<3>error …") and has no time of its own; when it
// is unset or names another file, the text log stays as it is. log_format = "json" carries
// the slot and pid of the worker a message is about as fields of their own.
//
// The "journal" here is a file of the test's: JOURNAL_STREAM is its device and inode, as
// systemd sets it for the stream socket it connects (systemd.exec(5)). What journald does
// with a "<N>" prefix is systemd's (SyslogLevelPrefix=); `make test-system` sees it filed.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.hpp"

extern char** environ;

using namespace bt;

namespace {

enum class JournalStream { names_stderr, names_another_file, unset };

// preforkd with stdout and stderr on one file, as the harness's Daemon runs it, and
// JOURNAL_STREAM naming that file, another file, or unset. The harness's Daemon inherits
// the test's environment and makes its log file itself, after the test could name it.
class JournalRun {
 public:
  JournalRun(const std::string& config_toml, JournalStream stream) {
    dir_.write("app.toml", config_toml);
    const int log_fd = ::open(dir_.file("log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    REQUIRE(log_fd >= 0);
    struct stat named {};
    REQUIRE(::stat(dir_.file(stream == JournalStream::names_another_file ? "app.toml" : "log").c_str(), &named) == 0);
    // Built before the fork: nothing may allocate in the child of a threaded process.
    std::vector<std::string> env_text;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry(*e);
      if (entry.starts_with("JOURNAL_STREAM=") || entry.starts_with("RUNTIME_DIRECTORY=")) continue;
      env_text.emplace_back(entry);
    }
    // The default control socket goes to $RUNTIME_DIRECTORY: each test has its own.
    env_text.push_back("RUNTIME_DIRECTORY=" + dir_.path());
    if (stream != JournalStream::unset)
      env_text.push_back("JOURNAL_STREAM=" + std::to_string(named.st_dev) + ":" + std::to_string(named.st_ino));
    std::vector<char*> envp;
    for (auto& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string bin = PREFORKD_BIN, flag = "--config", config = dir_.file("app.toml");
    std::vector<char*> argv{bin.data(), flag.data(), config.data(), nullptr};
    const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::dup2(devnull, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    ::close(devnull);
    ::close(log_fd);
    REQUIRE(pid_ > 0);
  }
  ~JournalRun() {
    if (!exit_code_) {
      ::kill(pid_, SIGKILL);
      wait_exit(30s);
    }
    wait_until([&] { return processes_of_master(pid_).empty(); }, 10s);
    for (pid_t p : processes_of_master(pid_)) ::kill(p, SIGKILL);
  }
  JournalRun(const JournalRun&) = delete;
  JournalRun& operator=(const JournalRun&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::string log() const {
    std::ifstream in(dir_.file("log"));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool wait_log(const std::string& needle) const {
    return wait_until([&] { return log().find(needle) != std::string::npos; });
  }
  std::optional<int> wait_exit(Ms deadline = default_deadline) {
    if (exit_code_) return exit_code_;
    int status = 0;
    if (!wait_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, deadline)) return std::nullopt;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool any_line(const std::vector<std::string>& lines, const std::function<bool(const std::string&)>& pred) {
  return std::any_of(lines.begin(), lines.end(), pred);
}

// One worker that prints a line on stdout, exits with status 3 after 300 ms and is not
// restarted: info, warn and error lines, and a worker's output line.
std::string failing_worker_config() {
  return toml({.address = local_address(free_port()),
               .count = 1,
               .args = {"--print-stdout", "--exit-after-ms", "300", "--exit-code", "3"},
               .worker = "restart = \"never\"\n"});
}

// A worker that writes a line with its own priority on stderr and a plain one on stdout.
std::string prefixing_worker_config() {
  return toml({.address = local_address(free_port()),
               .count = 1,
               .worker = "",
               .command = {"/bin/sh", "-c", "printf '<3>disk full\\n' >&2; printf 'plain line\\n'; exec sleep 600"}});
}

const std::regex timestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)");

}  // namespace

TEST_CASE("journal log: under the journal every line begins with its priority and has no time") {
  JournalRun run(failing_worker_config(), JournalStream::names_stderr);
  REQUIRE(run.wait_log("failed; not restarting it"));
  ::kill(run.pid(), SIGTERM);
  CHECK(run.wait_exit() == 0);
  const std::string log = run.log();
  INFO(log);
  const auto lines = lines_of(log);
  REQUIRE(!lines.empty());
  for (const auto& line : lines) {
    INFO(line);
    CHECK(std::regex_search(line, std::regex("^<[0-7]>")));
    CHECK_FALSE(std::regex_search(line, timestamp));
  }
  // The version banner and the worker's stdout at info, its exit at warn, its failure at error.
  CHECK(any_line(lines, [](const std::string& l) { return l.starts_with("<6>info  preforkd "); }));
  CHECK(any_line(lines, [](const std::string& l) {
    return l.starts_with("<6>info  worker 0 (pid ") && l.find("): demo worker 0 started") != std::string::npos;
  }));
  CHECK(any_line(lines, [](const std::string& l) {
    return l.starts_with("<4>warn  worker 0 (pid ") && l.ends_with(" exited with status 3");
  }));
  CHECK(any_line(lines, [](const std::string& l) {
    return l.starts_with("<3>error worker 0 ") && l.find("failed; not restarting it") != std::string::npos;
  }));
}

TEST_CASE("journal log: under the journal a config error at start is an error after the banner") {
  JournalRun run(toml({.address = local_address(free_port()), .worker = "restart = \"sometimes\"\n"}),
                 JournalStream::names_stderr);
  CHECK(run.wait_exit() == 78);
  const std::string log = run.log();
  INFO(log);
  const auto lines = lines_of(log);
  // The version banner first, at info; then every line of the error, at error.
  REQUIRE(lines.size() >= 2);
  CHECK(lines.front().starts_with("<6>info  preforkd "));
  for (std::size_t i = 1; i < lines.size(); ++i) CHECK(lines[i].starts_with("<3>"));
  CHECK(lines[1].find("app.toml:6:11: worker.restart:") != std::string::npos);
}

TEST_CASE("journal log: under the journal a worker line keeps the priority it names") {
  JournalRun run(prefixing_worker_config(), JournalStream::names_stderr);
  REQUIRE(run.wait_log("plain line"));
  REQUIRE(run.wait_log("disk full"));
  const auto lines = lines_of(run.log());
  INFO(run.log());
  // Its own "<3>" is the line's priority, not part of its text; a plain line is info.
  CHECK(any_line(lines, [](const std::string& l) {
    return std::regex_match(l, std::regex(R"(<3>error worker 0 \(pid \d+\): disk full)"));
  }));
  CHECK(any_line(lines, [](const std::string& l) {
    return std::regex_match(l, std::regex(R"(<6>info  worker 0 \(pid \d+\): plain line)"));
  }));
  ::kill(run.pid(), SIGTERM);
  CHECK(run.wait_exit() == 0);
}

TEST_CASE("journal log: without JOURNAL_STREAM or with one naming another file the log is unchanged") {
  for (const JournalStream stream : {JournalStream::unset, JournalStream::names_another_file}) {
    INFO((stream == JournalStream::unset ? "unset" : "names another file"));
    JournalRun run(prefixing_worker_config(), stream);
    REQUIRE(run.wait_log("plain line"));
    REQUIRE(run.wait_log("disk full"));
    ::kill(run.pid(), SIGTERM);
    CHECK(run.wait_exit() == 0);
    const std::string log = run.log();
    INFO(log);
    const auto lines = lines_of(log);
    REQUIRE(!lines.empty());
    for (const auto& line : lines) {
      INFO(line);
      CHECK(std::regex_search(
          line, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (info |warn |error|debug|trace) )")));
    }
    // A worker's line stays as it wrote it, its "<3>" included.
    CHECK(any_line(lines, [](const std::string& l) {
      return std::regex_search(l, std::regex(R"( info  worker 0 \(pid \d+\): <3>disk full$)"));
    }));
  }
}

TEST_CASE("journal log: json lines about a worker carry slot and worker_pid fields") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port),
                 .count = 1,
                 .args = {"--print-stdout", "--crash-after-ms", "300"},
                 .preforkd = "log_format = \"json\"\n"}));
  std::vector<nlohmann::json> objects;
  auto parse = [&] {
    objects.clear();
    for (const auto& line : lines_of(d.log())) objects.push_back(nlohmann::json::parse(line, nullptr, false));
  };
  // The first process's output line names its pid; then its crash.
  std::optional<int> first_pid;
  const std::regex started(R"(^worker 0 \(pid (\d+)\): demo worker 0 started)");
  auto crash_logged = [&] {
    parse();
    for (const auto& o : objects) {
      if (!o.is_object() || !o.contains("msg")) continue;
      const std::string msg = o["msg"];
      std::smatch m;
      if (!first_pid && std::regex_search(msg, m, started)) first_pid = std::stoi(m[1]);
      if (first_pid && o["level"] == "warn" && msg.starts_with("worker 0 (pid " + std::to_string(*first_pid) + ") "))
        return true;
    }
    return false;
  };
  REQUIRE(wait_until(crash_logged));
  INFO(d.log());
  int about_worker = 0;
  for (const auto& o : objects) {
    REQUIRE(o.is_object());  // every line is one JSON object
    const std::string msg = o["msg"];
    if (!msg.starts_with("worker 0")) continue;
    ++about_worker;
    INFO(o.dump());
    CHECK(o.value("slot", -1) == 0);
    CHECK(o.value("worker_pid", 0) > 0);
    CHECK(o.value("generation", -1) >= 0);
    // The output line and the exit of the first process name it.
    if (msg.starts_with("worker 0 (pid " + std::to_string(*first_pid) + ")")) CHECK(o["worker_pid"] == *first_pid);
  }
  CHECK(about_worker >= 2);
}
