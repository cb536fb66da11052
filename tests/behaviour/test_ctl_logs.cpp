// preforkctl logs: the workers' recent output that the master keeps per slot
// (worker.log_buffer), printed with the master's prefix; -f follows until the master
// stops; "0" turns it off; a reload that changes the size keeps the workers.
//
// The worker prints line k (odd k on stdout, even k on stderr) when the test creates the
// file say-<slot>-<k>, and the test waits until the master has logged it before the next:
// the order of lines from two pipes is then the order they were said in.

#include <catch2/catch.hpp>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "control_helpers.hpp"

extern char** environ;

using namespace bt;
using nlohmann::json;

namespace {

// One line: toml_string does not escape newlines.
const char* const speaker_script =
    "k=1; while :; do "
    "if [ -e \"$SAY_DIR/say-$PREFORK_WORKER_ID-$k\" ]; then "
    "if [ $((k % 2)) -eq 1 ]; then echo \"slot$PREFORK_WORKER_ID line-$k\"; "
    "else echo \"slot$PREFORK_WORKER_ID line-$k\" >&2; fi; "
    "k=$((k + 1)); "
    "else sleep 0.02; fi; "
    "done";

// Two speaker workers on `port`; more [worker] lines in `worker`.
std::string speaker_config(const TempDir& says, int port, const std::string& worker = "",
                           const std::string& preforkd = "") {
  return toml({.address = local_address(port),
               .count = 2,
               .worker = "env = { SAY_DIR = " + toml_string(says.path()) + " }\n" + worker,
               .preforkd = preforkd,
               .command = {"/bin/sh", "-c", speaker_script}});
}

// Makes `slot` print its line `k` and waits until the master has logged it.
bool say(const Daemon& d, const TempDir& says, int slot, int k) {
  says.write("say-" + std::to_string(slot) + "-" + std::to_string(k), "");
  return d.wait_log("slot" + std::to_string(slot) + " line-" + std::to_string(k) + "\n");
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// What follows "worker <slot> (pid <pid>): " in a printed line, or "" without the prefix.
std::string said(const std::string& line, int slot, pid_t pid) {
  const std::string prefix = "worker " + std::to_string(slot) + " (pid " + std::to_string(pid) + "): ";
  const auto at = line.find(prefix);
  return at == std::string::npos ? "" : line.substr(at + prefix.size());
}

// preforkctl running in the background, its stdout and stderr read through one pipe.
class BackgroundCtl {
 public:
  explicit BackgroundCtl(const std::vector<std::string>& args) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read_fd_ = fds[0];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    std::vector<std::string> argv_s{PREFORKCTL_BIN};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    REQUIRE(rc == 0);
  }
  ~BackgroundCtl() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(read_fd_);
  }
  BackgroundCtl(const BackgroundCtl&) = delete;
  BackgroundCtl& operator=(const BackgroundCtl&) = delete;

  // Reads what it printed until `needle` shows up or the deadline passes.
  bool wait_output(const std::string& needle, Ms deadline = default_deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (output_.find(needle) == std::string::npos) {
      const auto left = std::chrono::duration_cast<Ms>(until - std::chrono::steady_clock::now()).count();
      if (left <= 0) return false;
      pollfd p{read_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(read_fd_, buf, sizeof buf);
      if (n <= 0) return output_.find(needle) != std::string::npos;
      output_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  // Waits for it to exit: its exit code, or nullopt at the deadline.
  std::optional<int> wait_exit(Ms deadline = default_deadline) {
    std::optional<int> code;
    wait_until([&] {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
      pid_ = -1;
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return true;
    }, deadline);
    return code;
  }
  [[nodiscard]] const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
  std::string output_;
};

}  // namespace

TEST_CASE("logs -n 3 prints the last 3 lines of a slot from stdout and stderr in order", "[control][logs]") {
  TempDir says;
  Daemon d(speaker_config(says, free_port()));
  const auto ready = wait_workers_ready(d, 2, 0);
  REQUIRE(ready);
  const pid_t pid0 = pids_in(*ready)[0];
  const pid_t pid1 = pids_in(*ready)[1];
  REQUIRE(say(d, says, 0, 1));
  for (int k = 1; k <= 5; ++k) REQUIRE(say(d, says, 1, k));

  const CtlResult r = ctl(d, {"logs", "-n", "3", "1"}, 30s);
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 0);
  const auto printed = lines_of(r.out);
  REQUIRE(printed.size() == 3);
  CHECK(said(printed[0], 1, pid1) == "slot1 line-3");
  CHECK(said(printed[1], 1, pid1) == "slot1 line-4");
  CHECK(said(printed[2], 1, pid1) == "slot1 line-5");

  // Every slot by default, merged in the order the lines were read: slot 0's came first.
  const CtlResult all = ctl(d, {"logs"}, 30s);
  INFO("all: " << all.out);
  const auto every = lines_of(all.out);
  REQUIRE(every.size() == 6);
  CHECK(said(every[0], 0, pid0) == "slot0 line-1");
  CHECK(said(every[5], 1, pid1) == "slot1 line-5");

  // --json: one object per line, with the stream each came on.
  const CtlResult j = ctl(d, {"--json", "logs", "-n", "2", "1"}, 30s);
  INFO("json: " << j.out);
  CHECK(j.exit_code == 0);
  const auto objects = lines_of(j.out);
  REQUIRE(objects.size() == 2);
  const json four = json::parse(objects[0], nullptr, false);
  const json five = json::parse(objects[1], nullptr, false);
  REQUIRE_FALSE(four.is_discarded());
  REQUIRE_FALSE(five.is_discarded());
  CHECK(four.at("text") == "slot1 line-4");
  CHECK(four.at("stream") == "stderr");
  CHECK(five.at("stream") == "stdout");
  CHECK(five.at("slot") == 1);
  CHECK(five.at("pid") == pid1);

  // A slot the master does not have is refused, and the master goes on serving.
  const CtlResult bad = ctl(d, {"logs", "7"}, 30s);
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("logs: no slot 7; the slots are 0 to 1") != std::string::npos);
  CHECK(ctl(d, {"logs", "-n", "1", "1"}, 30s).exit_code == 0);
  stop_cleanly(d);
}

TEST_CASE("logs -f prints a line said after it started and exits 0 when the master stops", "[control][logs]") {
  TempDir says;
  Daemon d(speaker_config(says, free_port()));
  REQUIRE(wait_workers_ready(d, 2, 0));
  REQUIRE(say(d, says, 1, 1));

  BackgroundCtl follower({"--socket", control_socket(d), "logs", "-f", "1"});
  // The reply's lines are printed once the master has taken it as a follower.
  REQUIRE(follower.wait_output("slot1 line-1\n"));
  REQUIRE(say(d, says, 1, 2));
  INFO("follower: " << follower.output() << "\nlog: " << d.log());
  CHECK(follower.wait_output("slot1 line-2\n"));
  // Another slot's lines are not for it.
  REQUIRE(say(d, says, 0, 1));
  REQUIRE(say(d, says, 1, 3));
  CHECK(follower.wait_output("slot1 line-3\n"));
  CHECK(follower.output().find("slot0") == std::string::npos);

  stop_cleanly(d);
  CHECK(follower.wait_exit() == 0);
  CHECK(follower.wait_output("the master closed the connection"));
}

TEST_CASE("logs says that output is not kept with log_buffer 0 or worker_output inherit", "[control][logs]") {
  TempDir says;
  {
    Daemon d(speaker_config(says, free_port(), "log_buffer = \"0\"\n"));
    REQUIRE(wait_workers_ready(d, 2, 0));
    const CtlResult r = ctl(d, {"logs"}, 30s);
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(R"(worker output is not kept (worker.log_buffer = "0"))") != std::string::npos);
    stop_cleanly(d);
  }
  {
    Daemon d(speaker_config(says, free_port(), "", "worker_output = \"inherit\"\n"));
    REQUIRE(wait_workers_ready(d, 2, 0));
    const CtlResult r = ctl(d, {"logs", "-f"}, 30s);
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(R"(worker_output = "inherit")") != std::string::npos);
    stop_cleanly(d);
  }
}

TEST_CASE("preforkd --check names the place of a bad log_buffer", "[control][logs]") {
  TempDir dir;
  dir.write("app.toml", "[worker]\ncommand = [\"/bin/true\"]\ncount = 2\nlog_buffer = \"32MiB\"\n"
                        "[[listen]]\naddress = \"127.0.0.1:1\"\n");
  const auto [code, out] = run_preforkd({"--check", "--config", dir.file("app.toml")});
  INFO(out);
  CHECK(code != 0);
  CHECK(out.find("app.toml:4:14: worker.log_buffer: must be \"0\" (off) or a size from 1 KiB to 16 MiB") !=
        std::string::npos);
}

TEST_CASE("a reload that shrinks log_buffer keeps the workers and drops the oldest lines", "[control][logs]") {
  TempDir says;
  const int port = free_port();
  Daemon d(speaker_config(says, port));
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const std::vector<pid_t> pids = pids_in(*before);
  const pid_t pid1 = pids[1];
  // 20 lines of 13 bytes: 20 × (13 + 64) bytes, more than 1 KiB holds.
  for (int k = 1; k <= 20; ++k) REQUIRE(say(d, says, 1, k));
  CHECK(lines_of(ctl(d, {"logs", "-n", "100", "1"}, 30s).out).size() == 20);

  rewrite_config(d, speaker_config(says, port, "log_buffer = \"1KiB\"\n"));
  const CtlResult reload = ctl(d, {"reload"});
  INFO("reload: " << reload.out << reload.err << "\nlog: " << d.log());
  REQUIRE(reload.exit_code == 0);
  const auto after = wait_workers_ready(d, 2);
  REQUIRE(after);
  CHECK(pids_in(*after) == pids);

  const auto kept = lines_of(ctl(d, {"logs", "-n", "100", "1"}, 30s).out);
  INFO("kept: " << kept.size());
  CHECK(kept.size() == 1024 / (13 + 64));
  REQUIRE_FALSE(kept.empty());
  CHECK(said(kept.back(), 1, pid1) == "slot1 line-20");
  stop_cleanly(d);
}
