// Stray signals: every catchable signal without a meaning for preforkd (USR1 where it writes
// no log file, TSTP, ALRM, WINCH, the real-time ones, …) is logged and ignored. The master
// neither dies nor stops, keeps answering preforkctl and keeps the same workers serving; the
// workers it starts have no signal ignored or blocked. The fault signals (SEGV, BUS, ILL,
// FPE, TRAP, SYS, ABRT) keep their default action and are not sent here.

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

#include "control_helpers.hpp"
#include "harness.hpp"

using namespace bt;

namespace {

struct Stray {
  int sig;
  std::string name;  // as the log names it
};

std::vector<Stray> stray_signals() {
  std::vector<Stray> s = {{SIGUSR1, "SIGUSR1"}, {SIGALRM, "SIGALRM"},   {SIGPWR, "SIGPWR"},   {SIGVTALRM, "SIGVTALRM"},
                          {SIGPROF, "SIGPROF"}, {SIGIO, "SIGPOLL"},     {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
                          {SIGSTKFLT, "SIGSTKFLT"}, {SIGTSTP, "SIGTSTP"}, {SIGURG, "SIGURG"}, {SIGWINCH, "SIGWINCH"},
                          {SIGCONT, "SIGCONT"}};
  s.push_back({SIGRTMIN, "SIGRTMIN"});
  for (int sig = SIGRTMIN + 1; sig <= SIGRTMAX; ++sig) s.push_back({sig, "SIGRTMIN+" + std::to_string(sig - SIGRTMIN)});
  return s;
}

// The state letter of /proc/<pid>/stat ('T' when stopped); 0 when it cannot be read.
char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return 0;
  return stat[paren + 2];
}

// The value of `field` ("SigIgn") in /proc/<pid>/status; empty when it cannot be read.
std::string status_field(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::istringstream value(line.substr(field.size() + 1));
    std::string v;
    value >> v;
    return v;
  }
  return "";
}

// Asks GET / on fresh connections until every pid of `expected` has answered (or the
// deadline): the pids that answered.
std::set<pid_t> answering_pids(int port, const std::set<pid_t>& expected, Ms deadline = default_deadline) {
  static const std::regex pid_re(R"(\(pid (\d+)\))");
  std::set<pid_t> seen;
  wait_until(
      [&] {
        if (auto r = http_get(port, "/", 5s); r && r->status == 200) {
          std::smatch m;
          if (std::regex_search(r->body, m, pid_re)) seen.insert(static_cast<pid_t>(std::stol(m[1].str())));
        }
        return std::includes(seen.begin(), seen.end(), expected.begin(), expected.end());
      },
      deadline);
  return seen;
}

// A config whose workers are sync_worker: it installs no handler and blocks nothing, so its
// /proc status shows what preforkd handed it.
std::string sync_workers(int port) {
  return toml({.address = local_address(port), .count = 2, .command = {fixture("sync_worker")}});
}

std::set<pid_t> worker_pids(pid_t master) {
  std::set<pid_t> pids;
  for (int slot = 0; slot < 2; ++slot) pids.insert(worker_pid(master, slot));
  return pids;
}

}  // namespace

TEST_CASE("stray signals are logged and ignored and the master keeps its workers serving") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  REQUIRE(wait_workers_ready(d, 2));
  const std::set<pid_t> workers = worker_pids(d.pid());
  REQUIRE(workers.size() == 2);
  REQUIRE(workers.count(-1) == 0);
  REQUIRE(answering_pids(port, workers) == workers);

  // A client all along: not one request fails.
  LoadClient client(port);
  for (const Stray& s : stray_signals()) {
    const std::string line = "received " + s.name + " (signal " + std::to_string(s.sig) + ")";
    INFO("sent " << s.name << " (" << s.sig << ")");
    d.signal(s.sig);
    CHECK(d.wait_log(line));
    REQUIRE(process_alive(d.pid()));
    CHECK(process_state(d.pid()) != 'T');
    const CtlResult st = ctl(d, {"status"}, 30s);
    INFO(st.out << st.err);
    REQUIRE(st.exit_code == 0);
    CHECK(answering_pids(port, workers) == workers);
    CHECK(worker_pids(d.pid()) == workers);
  }
  // USR1 says why it does nothing.
  CHECK(d.count_log("preforkd writes no log file to reopen") == 1);

  // glibc's own 32 and 33 cannot be watched: ignored in the kernel, without a line.
  for (int sig : {32, 33}) {
    INFO("sent signal " << sig);
    d.signal(sig);
    REQUIRE(ctl(d, {"status"}, 30s).exit_code == 0);
    REQUIRE(process_alive(d.pid()));
  }
  CHECK(answering_pids(port, workers) == workers);
  const LoadClient::Stats load = client.stop();
  INFO(describe(load));
  CHECK(load.failed == 0);
  CHECK(load.answered > 0);
  CHECK(load.pids == workers);
  INFO(d.log());
  stop_cleanly(d);
}

TEST_CASE("a storm of one signal gives one log line and then one count a second") {
  const int port = free_port();
  Daemon d(sync_workers(port));
  REQUIRE(wait_workers_ready(d, 2));

  // A real-time signal, since those queue (a standard one sent again while pending is
  // merged with the first): the master receives every one of them.
  const int sig = SIGRTMIN + 1;
  const std::string name = "SIGRTMIN+1 (signal " + std::to_string(sig) + ")";
  const auto started = std::chrono::steady_clock::now();
  constexpr int storm = 2000;
  for (int i = 0; i < storm; ++i) d.signal(sig);
  CHECK(d.wait_log("received " + name + ": it means nothing to preforkd, ignoring"));
  // The rest are counted, in one line a second: their counts add up to the storm.
  const std::regex count_re("received " + std::regex_replace(name, std::regex(R"([()+])"), R"(\$&)") +
                            R"( (\d+) more times? in )");
  auto counted = [&] {
    const std::string log = d.log();
    int sum = 0;
    for (std::sregex_iterator it(log.begin(), log.end(), count_re), end; it != end; ++it) sum += std::stoi((*it)[1].str());
    return sum;
  };
  CHECK(wait_until([&] { return counted() == storm - 1; }));
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
  INFO(d.log());
  CHECK(counted() == storm - 1);
  CHECK(d.count_log(name) <= 2 + static_cast<int>(seconds.count()));
  REQUIRE(process_alive(d.pid()));
  CHECK(ctl(d, {"status"}, 30s).exit_code == 0);
  stop_cleanly(d);
}

TEST_CASE("workers start with no signal ignored or blocked after the master has caught stray ones") {
  const int port = free_port();
  Daemon d(sync_workers(port));
  REQUIRE(wait_workers_ready(d, 2));
  // The master ignores PIPE, 32 and 33 itself, and watches every other signal.
  d.signal(SIGUSR1);
  d.signal(SIGRTMIN);
  REQUIRE(d.wait_log("received SIGRTMIN (signal 34)"));
  const pid_t first = worker_pid(d.pid(), 0);
  REQUIRE(first > 0);
  // A worker started after that: the replacement of one killed.
  ::kill(first, SIGKILL);
  pid_t replacement = -1;
  REQUIRE(wait_until([&] {
    replacement = worker_pid(d.pid(), 0);
    return replacement > 0 && replacement != first;
  }));
  REQUIRE(wait_workers_ready(d, 2));
  replacement = worker_pid(d.pid(), 0);
  for (pid_t pid : {replacement, worker_pid(d.pid(), 1)}) {
    INFO("worker " << pid);
    CHECK(status_field(pid, "SigIgn") == "0000000000000000");
    CHECK(status_field(pid, "SigBlk") == "0000000000000000");
  }
  INFO(d.log());
  stop_cleanly(d);
}
