#include "example_runner.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "../behaviour/control_helpers.hpp"
#include "../behaviour/harness.hpp"

namespace examples {
namespace {

using namespace bt;
namespace fs = std::filesystem;

constexpr int worker_count = 2;  // every example's preforkd.toml says count = 2
const std::string release_1 = "APP_RELEASE = \"1\"";
const std::string release_2 = "APP_RELEASE = \"2\"";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

// Copies examples/<name> into `dir`, filling in @DIR@ and @PORT@ in every file, as a user
// who copies the example does by hand.
void copy_example(const std::string& name, const TempDir& dir, int port) {
  const fs::path source = fs::path(SOURCE_DIR) / "examples" / name;
  REQUIRE(fs::is_directory(source));
  fs::copy(source, dir.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    const std::string text = read_text(entry.path());
    const std::string filled = replace_all(replace_all(text, "@DIR@", dir.path()), "@PORT@", std::to_string(port));
    if (filled != text) write_text(entry.path(), filled);
  }
  fs::create_directories(dir.file("run"));
}

// Runs `command` through the shell with its output in `log`; its exit status.
int run_shell(const std::string& command, const std::string& log) {
  const int status = std::system((command + " >" + log + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct Answer {
  int status = 0;
  std::string text;  // head and body
};

// GET `path` on a fresh connection ("Connection: close"); nullopt on any failure.
std::optional<Answer> get(int port, const std::string& path, Ms timeout = 10s) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  timeval tv{static_cast<time_t>(secs.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string data;
  bool clean_end = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) data.append(buf, static_cast<std::size_t>(n));
      clean_end = n == 0;
    }
  }
  ::close(fd);
  if (!clean_end || data.rfind("HTTP/1.", 0) != 0 || data.find("\r\n\r\n") == std::string::npos) return std::nullopt;
  return Answer{std::atoi(data.c_str() + 9), data};
}

pid_t parent_of(pid_t pid) {
  // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so parse after ')'.
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(stat.substr(close + 1));
  std::string state;
  pid_t ppid = -1;
  in >> state >> ppid;
  return ppid;
}

// The preforkd worker (a pid of `workers`, indexed by slot) that gave `answer`: the answer
// names the process that served it ("pid N", which may be a child of the worker, as in
// nginx, HAProxy -Ws or gunicorn) or the worker's slot ("slot N", as lighttpd's
// server.tag does). -1 when it names neither.
pid_t worker_of(const Answer& answer, const std::vector<pid_t>& workers) {
  static const std::regex pid_re("pid (\\d+)"), slot_re("slot (\\d+)");
  std::smatch m;
  if (std::regex_search(answer.text, m, pid_re)) {
    for (pid_t p = std::stoi(m[1]); p > 1; p = parent_of(p))
      for (pid_t w : workers)
        if (w == p) return w;
    return -1;
  }
  if (std::regex_search(answer.text, m, slot_re)) {
    const auto slot = static_cast<std::size_t>(std::stoi(m[1]));
    return slot < workers.size() ? workers[slot] : -1;
  }
  return -1;
}

// A client that opens a fresh connection per GET `path` until stop(); a failure is any
// request not answered 200 (refused, reset, timed out, an error status).
class Client {
 public:
  Client(int port, std::string path) : port_(port), path_(std::move(path)), thread_([this] { run(); }) {}
  ~Client() { stop(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool wait_answered(int n) {
    const int target = answered_.load() + n;
    return wait_until([&] { return answered_.load() >= target; }, 60s);
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] int answered() const { return answered_.load(); }
  [[nodiscard]] int failed() const { return failed_.load(); }
  std::string report() {
    std::lock_guard lock(mutex_);
    std::string text = path_ + ": " + std::to_string(answered_.load()) + " answered, " +
                       std::to_string(failed_.load()) + " failed";
    for (const auto& f : failures_) text += "\n  " + f;
    return text;
  }

 private:
  void run() {
    while (!stop_) {
      const auto answer = get(port_, path_);
      if (answer && answer->status == 200) {
        ++answered_;
        continue;
      }
      ++failed_;
      std::lock_guard lock(mutex_);
      if (failures_.size() < 10) failures_.push_back(answer ? answer->text.substr(0, 200) : "no answer");
    }
  }

  int port_;
  std::string path_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0}, failed_{0};
  std::mutex mutex_;
  std::vector<std::string> failures_;
  std::thread thread_;
};

// Asks GET / until every pid of `wanted` has answered; the ones that did.
std::set<pid_t> answering_workers(int port, const std::vector<pid_t>& workers, const std::set<pid_t>& wanted) {
  std::set<pid_t> seen;
  wait_until([&] {
    if (const auto a = get(port, "/"); a && a->status == 200) {
      const pid_t w = worker_of(*a, workers);
      if (wanted.contains(w)) seen.insert(w);
    }
    return seen == wanted;
  });
  return seen;
}

// Sockets listening on 127.0.0.1:<port>, from /proc/net/tcp.
int listening_sockets(int port) {
  std::istringstream in(read_text("/proc/net/tcp"));
  std::string line;
  std::getline(in, line);  // header
  char want[32];
  std::snprintf(want, sizeof want, "0100007F:%04X", port);
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state;
    f >> sl >> local >> remote >> state;
    if (local == want && state == "0A") ++n;
  }
  return n;
}

// Every process of the server: descendants of the master (found through their parents, as
// nginx overwrites its environment with its process title) and processes whose
// environment names the master.
std::set<pid_t> server_processes(pid_t master) {
  std::set<pid_t> out;
  for (pid_t p : processes_of_master(master)) out.insert(p);
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    for (pid_t p = parent_of(pid); p > 1; p = parent_of(p))
      if (p == master) {
        if (process_alive(pid)) out.insert(pid);
        break;
      }
  }
  return out;
}

// A line in the test's output (shown by ctest for a failed test): what step, and when.
void step(const std::string& what) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count() % 86'400'000;
  std::printf("%02lld:%02lld:%02lld.%03lld example: %s\n", static_cast<long long>(ms / 3'600'000),
              static_cast<long long>(ms / 60'000 % 60), static_cast<long long>(ms / 1000 % 60),
              static_cast<long long>(ms % 1000), what.c_str());
  std::fflush(stdout);
}

}  // namespace

void run_example(const Example& ex) {
  for (const auto& program : ex.programs)
    if (::access(program.c_str(), program.ends_with(".so") ? R_OK : X_OK) != 0)
      FAIL(program << " is missing: install " << ex.install_hint << " (scripts/install-deps.sh does)");

  const int port = free_port();
  TempDir dir("preforkd-example-" + ex.name);
  copy_example(ex.name, dir, port);
  if (ex.go_build) {
    const std::string run = dir.file("run");
    const int rc = run_shell("cd " + dir.path() + " && HOME=" + run + " GOCACHE=" + run + "/gocache GOPATH=" + run +
                                 "/gopath GOPROXY=off GOFLAGS= go build -o hello .",
                             dir.file("run/go-build.log"));
    INFO("go build:\n" << read_text(dir.file("run/go-build.log")));
    REQUIRE(rc == 0);
  }
  const std::string config = read_text(dir.file("preforkd.toml"));
  REQUIRE(config.find(release_1) != std::string::npos);

  Daemon d(config);
  // The log goes to stdout, which ctest shows only for a failed test.
  struct PrintLog {
    const Daemon& d;
    ~PrintLog() { std::printf("---- preforkd log ----\n%s---- end of log ----\n", d.log().c_str()); }
  } print_log{d};

  step("started preforkd");
  // 1. N distinct workers answer, and nobody but preforkd bound the port.
  auto status = wait_workers_ready(d, worker_count, 0, 60s);
  REQUIRE(status);
  std::vector<pid_t> pids = pids_in(*status);
  const std::set<pid_t> first(pids.begin(), pids.end());
  REQUIRE(first.size() == worker_count);
  CHECK(answering_workers(port, pids, first) == first);
  CHECK(listening_sockets(port) == worker_count);  // one per slot, all the master's

  step("both workers answered");
  // 2. kill -9 of a worker: its slot gets a new one, which serves.
  const pid_t killed = pids[0];
  REQUIRE(::kill(killed, SIGKILL) == 0);
  status.reset();
  REQUIRE(wait_until([&] {
    status = wait_workers_ready(d, worker_count, 0, 5s);
    return status && pids_in(*status)[0] != killed;
  }, 60s));
  pids = pids_in(*status);
  step("replacement is ready");
  CHECK(answering_workers(port, pids, {pids[0]}) == std::set<pid_t>{pids[0]});
  step("replacement answered");
  CHECK_FALSE(process_alive(killed));

  // 3. A reload that rolls new workers, under a fresh-connection client (and a client of
  // slow requests where the server has one: the old workers' stop_signal must let them
  // finish): no request fails.
  const std::set<pid_t> before_reload(pids.begin(), pids.end());
  {
    Client fast(port, "/");
    std::optional<Client> slow;
    if (!ex.slow_path.empty()) slow.emplace(port, ex.slow_path);
    REQUIRE(fast.wait_answered(10));
    if (slow) REQUIRE(slow->wait_answered(2));
    step("load running, reloading");
    rewrite_config(d, replace_all(config, release_1, release_2));
    const auto reload = ctl(d, {"reload"});
    INFO("preforkctl reload: " << reload.out << reload.err);
    CHECK(reload.exit_code == 0);
    step("reloaded");
    CHECK(fast.wait_answered(10));
    if (slow) CHECK(slow->wait_answered(2));
    fast.stop();
    INFO(fast.report());
    CHECK(fast.failed() == 0);
    if (slow) {
      slow->stop();
      INFO(slow->report());
      CHECK(slow->failed() == 0);
    }
  }
  status = wait_workers_ready(d, worker_count, 1, 60s);
  REQUIRE(status);
  pids = pids_in(*status);
  for (pid_t p : pids) CHECK_FALSE(before_reload.contains(p));
  const std::set<pid_t> after_reload(pids.begin(), pids.end());
  CHECK(answering_workers(port, pids, after_reload) == after_reload);
  for (pid_t p : before_reload) CHECK(wait_until([&] { return !process_alive(p); }));

  step("new workers answered, old ones gone");
  // 4. A graceful stop leaves no process of the server (nor of preforkd).
  const std::set<pid_t> all = server_processes(d.pid());
  CHECK(all.size() >= worker_count);
  const auto stop = ctl(d, {"stop"});
  INFO("preforkctl stop: " << stop.out << stop.err);
  CHECK(stop.exit_code == 0);
  CHECK(d.wait_exit(60s) == 0);
  for (pid_t p : all) {
    INFO("pid " << p);
    CHECK(wait_until([&] { return !process_alive(p); }));
  }
  CHECK(no_process_left(d.pid()));
  step("stopped");
}

}  // namespace examples
