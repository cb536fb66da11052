// Listening sockets are handed over as systemd hands them (issue 17, item 1): blocking,
// unless [[listen]] non_blocking = true (systemd's NonBlocking=). A worker that only loops
// on accept() without touching the socket's flags (tests/fixtures/sync_worker.cpp, a
// plain C accept loop) then sleeps in accept() instead of spinning, and a Python server
// that takes its socket as socket.socket(fileno=3) serves instead of crash-looping. The
// master never changes the flag under a running worker and never relies on it: while it
// refuses connections (fail-fast) on blocking sockets it keeps answering, and the flags
// it shares with the workers stay as they were.

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "control_helpers.hpp"
#include "harness.hpp"

using namespace bt;

namespace {

constexpr const char* python = "/usr/bin/python3";

// The file status flags of `fd` in process `pid` ("flags:" of /proc/<pid>/fdinfo/<fd>,
// octal), or -1 when unreadable.
int fd_flags(pid_t pid, int fd) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  std::string key;
  while (in >> key) {
    if (key == "flags:") {
      std::string value;
      in >> value;
      return static_cast<int>(std::stol(value, nullptr, 8));
    }
  }
  return -1;
}

// "blocking", "non-blocking" or "unreadable": what a worker's fd 3 is, for readable failures.
std::string fd3_mode(pid_t pid) {
  const int flags = fd_flags(pid, 3);
  if (flags < 0) return "unreadable";
  return (flags & O_NONBLOCK) != 0 ? "non-blocking" : "blocking";
}

// The pids of the `count` ready workers, by slot (empty when they never all got ready).
std::vector<pid_t> ready_workers(const Daemon& d, int count) {
  const auto status = wait_workers_ready(d, count);
  if (!status) return {};
  return pids_in(*status);
}

// Waits until `slot` has a ready worker other than `old`; its pid, or -1.
pid_t replacement(const Daemon& d, int slot, pid_t old) {
  pid_t found = -1;
  wait_until([&] {
    const auto status = status_of(d);
    if (!status) return false;
    for (const auto& w : (*status)["workers"]) {
      if (w.value("slot", -1) != slot || w.value("state", "") != "ready") continue;
      const pid_t pid = w.value("pid", -1);
      if (pid > 0 && pid != old) found = pid;
    }
    return found > 0;
  });
  return found;
}

// User plus system CPU time of `pid` in clock ticks (/proc/<pid>/stat fields 14 and 15).
long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  long utime = 0;
  long stime = 0;
  // After the command: state is field 3, utime 14 and stime 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// The inodes of the TCP sockets listening on 127.0.0.1:<port> (/proc/net/tcp).
std::vector<std::string> listening_inodes(int port) {
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // the header
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X", port);
  std::vector<std::string> out;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, addr, rem, st, queues, tr, retr, uid, timeout, inode;
    f >> sl >> addr >> rem >> st >> queues >> tr >> retr >> uid >> timeout >> inode;
    if (addr == local && st == "0A") out.push_back(inode);
  }
  return out;
}

// The fds through which `pid` holds the sockets listening on 127.0.0.1:<port>.
std::vector<int> listening_fds(pid_t pid, int port) {
  const auto inodes = listening_inodes(port);
  std::vector<int> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[128];
    const ssize_t n = ::readlinkat(::dirfd(d), e->d_name, target, sizeof target - 1);
    if (n <= 0) continue;
    const std::string link(target, static_cast<std::size_t>(n));
    for (const auto& inode : inodes)
      if (link == "socket:[" + inode + "]") out.push_back(std::stoi(e->d_name));
  }
  ::closedir(d);
  return out;
}

// What became of a GET on a fresh connection: "answered", "reset", or what else happened.
std::string fresh_request(int port, Ms timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "no socket";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string outcome;
  const std::string get = "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    outcome = "connect failed";
  } else if (::send(fd, get.data(), get.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(get.size())) {
    outcome = errno == ECONNRESET || errno == EPIPE ? "reset" : "send failed";
  } else {
    pollfd p{fd, POLLIN, 0};
    char buf[256];
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) {
      outcome = "timed out";
    } else {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      outcome = n > 0 ? "answered" : n == 0 ? "closed" : errno == ECONNRESET ? "reset" : "recv failed";
    }
  }
  ::close(fd);
  return outcome;
}

struct Listener {
  const char* name;
  std::string keys;  // [[listen]] lines
};

const Listener listener_kinds[] = {
    {"reuseport", ""},
    {"shared", "mode = \"shared\"\n"},
};

std::string sync_workers(int port, int count, const std::string& listen_keys) {
  return toml({.address = local_address(port), .count = count, .command = {fixture("sync_worker")}}) + listen_keys;
}

}  // namespace

TEST_CASE("workers get blocking listening sockets by default and non-blocking ones with non_blocking = true") {
  for (const Listener& kind : listener_kinds) {
    for (const bool non_blocking : {false, true}) {
      const std::string expected = non_blocking ? "non-blocking" : "blocking";
      INFO("mode " << kind.name << ", non_blocking = " << non_blocking);
      const int port = free_port();
      Daemon d(sync_workers(port, 2, kind.keys + (non_blocking ? "non_blocking = true\n" : "")));
      const auto pids = ready_workers(d, 2);
      INFO(d.log());
      REQUIRE(pids.size() == 2);
      for (pid_t pid : pids) CHECK(fd3_mode(pid) == expected);
      const auto status = status_of(d);
      REQUIRE(status);
      CHECK((*status)["listeners"][0].value("non_blocking", !non_blocking) == non_blocking);
      // The plain accept loop serves (on a non-blocking socket it spins between connections).
      const auto r = http_get(port, "/", 10s);
      REQUIRE(r);
      CHECK(r->status == 200);

      // A crashed worker's replacement gets the same socket, with the same flags.
      ::kill(pids[0], SIGKILL);
      const pid_t respawned = replacement(d, 0, pids[0]);
      REQUIRE(respawned > 0);
      CHECK(fd3_mode(respawned) == expected);
      stop_cleanly(d);
    }
  }
}

TEST_CASE("a worker that made its socket non-blocking and died leaves its successor a blocking one") {
  // Slot 0's first run sets O_NONBLOCK on fd 3 (as asyncio or Go runtimes do) and exits;
  // the flag belongs to the open file, which the master keeps. Its successor, and no one
  // else holding the socket, starts with the flags the config says.
  TempDir files;
  const std::string marker = files.file("first-run-done");
  const std::string script = files.file("set_nonblock_then_exit.py");
  std::ofstream(script) << "import fcntl, os, sys\n"
                           "marker = " << toml_string(marker) << "\n"
                           "if not os.path.exists(marker):\n"
                           "    open(marker, 'w').close()\n"
                           "    fcntl.fcntl(3, fcntl.F_SETFL, fcntl.fcntl(3, fcntl.F_GETFL) | os.O_NONBLOCK)\n"
                           "    sys.exit(3)\n"
                           "os.execv(" << toml_string(fixture("sync_worker")) << ", ['sync_worker'])\n";
  REQUIRE(::access(python, X_OK) == 0);
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 1, .command = {python, script}}));
  // The successor: slot 0's ready worker after one restart.
  pid_t successor = -1;
  const bool restarted = wait_until([&] {
    const auto status = status_of(d);
    if (!status || (*status)["workers"].empty()) return false;
    const auto& w = (*status)["workers"][0];
    if (w.value("restarts", 0) < 1 || w.value("state", "") != "ready") return false;
    successor = w.value("pid", -1);
    return successor > 0;
  });
  INFO(d.log());
  REQUIRE(restarted);
  REQUIRE(::access(marker.c_str(), F_OK) == 0);
  CHECK(fd3_mode(successor) == "blocking");
  const auto r = http_get(port, "/", 10s);
  REQUIRE(r);
  CHECK(r->status == 200);
  stop_cleanly(d);
}

TEST_CASE("a worker's flags are never changed under it: a shared socket a running worker made non-blocking stays so") {
  // Slot 0 sets O_NONBLOCK on the shared socket and keeps running; slot 1 then crashes. Its
  // replacement gets the socket as slot 0 left it: putting the configured flag back would
  // change slot 0's accept() under it.
  TempDir files;
  const std::string script = files.file("worker.py");
  std::ofstream(script) << "import fcntl, os, socket, time\n"
                           "if os.environ['PREFORK_WORKER_ID'] == '0':\n"
                           "    fcntl.fcntl(3, fcntl.F_SETFL, fcntl.fcntl(3, fcntl.F_GETFL) | os.O_NONBLOCK)\n"
                           "while True:\n"
                           "    time.sleep(60)\n";
  REQUIRE(::access(python, X_OK) == 0);
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2, .command = {python, script}}) + "mode = \"shared\"\n");
  const auto pids = ready_workers(d, 2);
  INFO(d.log());
  REQUIRE(pids.size() == 2);
  REQUIRE(wait_until([&] { return fd3_mode(pids[0]) == "non-blocking"; }));
  ::kill(pids[1], SIGKILL);
  const pid_t respawned = replacement(d, 1, pids[1]);
  REQUIRE(respawned > 0);
  CHECK(fd3_mode(respawned) == "non-blocking");
  CHECK(fd3_mode(pids[0]) == "non-blocking");
  stop_cleanly(d);
}

TEST_CASE("idle plain accept-loop workers sleep in accept and use almost no CPU") {
  const int port = free_port();
  Daemon d(sync_workers(port, 4, ""));
  const auto pids = ready_workers(d, 4);
  INFO(d.log());
  REQUIRE(pids.size() == 4);
  const auto served = http_get(port, "/", 10s);
  REQUIRE(served);
  CHECK(served->status == 200);
  std::vector<long> before;
  for (pid_t pid : pids) before.push_back(cpu_ticks(pid));
  // A measurement window, not a wait for a condition: CPU time over 2 s of idling.
  std::this_thread::sleep_for(2s);
  long used = 0;
  for (std::size_t i = 0; i < pids.size(); ++i) used += cpu_ticks(pids[i]) - before[i];
  const long ticks_per_s = ::sysconf(_SC_CLK_TCK);
  INFO("4 idle workers used " << used << " ticks of CPU in 2 s (" << ticks_per_s << " ticks a second)");
  // Spinning on EAGAIN they take about half a core each (~400 ticks here); asleep, nothing.
  CHECK(used <= ticks_per_s / 10);
  stop_cleanly(d);
}

TEST_CASE("a Python server taking its socket as socket.socket with fileno 3 serves without crash-looping") {
  TempDir files;
  const std::string script = files.file("server.py");
  std::ofstream(script) << "import os, socket\n"
                           "s = socket.socket(fileno=3)\n"
                           "slot = os.environ['PREFORK_WORKER_ID'].encode()\n"
                           "while True:\n"
                           "    c, _ = s.accept()\n"
                           "    c.recv(65536)\n"
                           "    body = b'python worker ' + slot + b'\\n'\n"
                           "    c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n' % "
                           "len(body) + body)\n"
                           "    c.close()\n";
  REQUIRE(::access(python, X_OK) == 0);
  const Listener kinds[] = {{"balance load", "balance = \"load\"\n"},
                            {"balance hash", "balance = \"hash\"\n"},
                            {"shared", "mode = \"shared\"\n"}};
  for (const Listener& kind : kinds) {
    INFO(kind.name);
    const int port = free_port();
    Daemon d(toml({.address = local_address(port), .count = 2, .ready = "500ms", .command = {python, script}}) +
             kind.keys);
    REQUIRE(ready_workers(d, 2).size() == 2);
    int answered = 0;
    for (int i = 0; i < 20; ++i) {
      const auto r = http_get(port, "/", 10s);
      if (r && r->status == 200 && r->body.starts_with("python worker ")) ++answered;
    }
    const auto status = status_of(d);
    INFO(d.log());
    CHECK(answered == 20);
    REQUIRE(status);
    for (const auto& w : (*status)["workers"]) CHECK(w.value("restarts", -1) == 0);
    CHECK(d.count_log("BlockingIOError") == 0);
    stop_cleanly(d);
  }
}

TEST_CASE("fail-fast refuses on blocking sockets while the master keeps answering and leaves the flags alone") {
  const int port = free_port();
  TempDir files;
  const std::string crash_file = files.file("crash");
  std::ofstream(crash_file) << "crash\n";
  const std::string script = "if [ -e " + crash_file + " ]; then exit 1; fi; exec " + fixture("sync_worker");
  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .ready = "500ms",
                 .worker = "backoff_initial = \"100ms\"\nbackoff_max = \"400ms\"\n",
                 .command = {"/bin/sh", "-c", script}}) +
           "fail_fast_after = \"1s\"\n");
  REQUIRE(d.wait_log("refusing connections until one is", 20s));
  const auto held = listening_fds(d.pid(), port);
  INFO(d.log());
  REQUIRE(!held.empty());  // one per slot

  // Clients keep connecting while the master refuses: each is reset at once; meanwhile the
  // master answers its control socket and its sockets' flags never show O_NONBLOCK.
  std::atomic<bool> stop{false};
  std::atomic<int> resets{0};
  std::atomic<int> others{0};
  std::thread client([&] {
    while (!stop) (fresh_request(port, 10s) == "reset" ? resets : others)++;
  });
  int status_answers = 0;
  int non_blocking_seen = 0;
  const bool enough = wait_until([&] {
    for (int fd : held)
      if (const int flags = fd_flags(d.pid(), fd); flags >= 0 && (flags & O_NONBLOCK) != 0) ++non_blocking_seen;
    if (status_of(d, 5s)) ++status_answers;
    return status_answers >= 20 && resets >= 50;
  }, 60s);
  stop = true;
  client.join();
  INFO("status answered " << status_answers << " times; " << resets << " resets, " << others << " other outcomes");
  CHECK(enough);
  CHECK(non_blocking_seen == 0);
  const auto status = status_of(d);
  REQUIRE(status);
  CHECK((*status)["listeners"][0].value("refused_total", 0) >= 50);

  // A worker started after the refusing still gets a blocking socket, and serves.
  REQUIRE(std::remove(crash_file.c_str()) == 0);
  REQUIRE(d.wait_log("no longer refusing connections", 30s));
  const auto pids = ready_workers(d, 2);
  REQUIRE(pids.size() == 2);
  for (pid_t pid : pids) CHECK(fd3_mode(pid) == "blocking");
  const auto r = http_get(port, "/", 10s);
  REQUIRE(r);
  CHECK(r->status == 200);
  stop_cleanly(d);
}

TEST_CASE("a reload that changes non_blocking is refused and changes nothing") {
  const int port = free_port();
  Daemon d(sync_workers(port, 2, ""));
  const auto pids = ready_workers(d, 2);
  INFO(d.log());
  REQUIRE(pids.size() == 2);
  rewrite_config(d, sync_workers(port, 2, "non_blocking = true\n"));
  const auto reload = ctl(d, {"reload"});
  INFO(reload.out << reload.err);
  CHECK(reload.exit_code == 1);
  CHECK((reload.out + reload.err).find("non_blocking cannot change on a socket the running workers share") !=
        std::string::npos);
  CHECK((reload.out + reload.err).find("stop and start preforkd") != std::string::npos);
  const auto after = ready_workers(d, 2);
  CHECK(after == pids);
  for (pid_t pid : after) CHECK(fd3_mode(pid) == "blocking");
  stop_cleanly(d);
}

TEST_CASE("sockets taken back from the fd store get the configured flags and not the stored ones") {
  for (const bool non_blocking : {false, true}) {
    INFO("non_blocking = " << non_blocking);
    const int port = free_port();
    // A socket as systemd would hold it for slot 0, with the other flag than the config's.
    const int stored = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (non_blocking ? 0 : SOCK_NONBLOCK), 0);
    REQUIRE(stored >= 0);
    const int one = 1;
    ::setsockopt(stored, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(stored, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(stored, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(::listen(stored, 16) == 0);
    {
      Daemon d(sync_workers(port, 1, non_blocking ? "non_blocking = true\n" : ""), {}, 0,
               PassedFds{{stored}, "preforkd.http.0"});
      const auto pids = ready_workers(d, 1);
      INFO(d.log());
      REQUIRE(pids.size() == 1);
      CHECK(d.count_log("fd store: took 1 stored socket of listener 'http'") == 1);
      CHECK(fd3_mode(pids[0]) == (non_blocking ? "non-blocking" : "blocking"));
      stop_cleanly(d);
    }
    ::close(stored);
  }
}
