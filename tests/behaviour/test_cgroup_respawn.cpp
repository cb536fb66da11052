// Worker cgroups and respawn: a worker killed with SIGKILL is replaced about as fast as
// without worker cgroups (the replacement starts in a cgroup made ahead, with
// clone3(CLONE_INTO_CGROUP)), and the dead worker's whole tree is still killed, in its own
// cgroup, although the replacement already runs. No cgroup is left behind: each slot has
// its current cgroup and one spare, and a slot scaled away takes both.
//
// These need root and a writable cgroup2 mount: where preforkd can make worker cgroups
// (root with a cgroup2 mount), a test that cannot use them fails.

#include <catch2/catch.hpp>
#include <csignal>
#include <dirent.h>
#include <fstream>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>

#include "control_helpers.hpp"
#include "tree_helpers.hpp"

using namespace bt;

namespace {

// Fails the test where worker cgroups should work: as root, with a cgroup2 mount.
void require_cgroups() {
  const std::string why = cgroups_unavailable();
  INFO("worker cgroups cannot be tested here: " << why);
  REQUIRE(why.empty());
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The names of the subdirectories of `dir` that start with `prefix`.
std::vector<std::string> subdirs(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d))
    if (e->d_type == DT_DIR && std::string_view(e->d_name).starts_with(prefix)) out.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// The cgroup2 path of `pid` ("0::/a/b" in /proc/<pid>/cgroup), "" when unreadable.
std::string cgroup_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("0::")) return line.substr(3);
  return "";
}

// True when `pid` is in the cgroup whose directory is `dir` (mount point + cgroup path).
bool in_cgroup(pid_t pid, const std::string& dir) {
  const std::string path = cgroup_of(pid);
  return !path.empty() && dir.ends_with(path);
}

std::string cgroup_of_slot(const Daemon& d, int slot) {
  const auto s = status_of(d);
  if (!s) return "";
  for (const auto& w : (*s)["workers"])
    if (w.value("slot", -1) == slot) return w.value("cgroup", std::string());
  return "";
}

// A tree_worker in `slot` whose pid is not `old`, and its children.
std::optional<TreeHello> tree_hello_other_than(int port, pid_t old) {
  std::optional<TreeHello> h;
  wait_until([&] {
    h = tree_hello(port, 5s);
    return h && h->pid != old;
  });
  if (h && h->pid == old) return std::nullopt;
  return h;
}

// ---------------------------------------------------------------- respawn timing

std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// The Unix datagram socket the bench_worker fixture reports "<pid> <slot> <ns>" to.
class Starts {
 public:
  explicit Starts(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) FAIL("bind " << path_);
  }
  ~Starts() {
    if (fd_ >= 0) ::close(fd_);
  }
  Starts(const Starts&) = delete;
  Starts& operator=(const Starts&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }

  struct Start {
    pid_t pid = -1;
    int slot = -1;
    std::int64_t ns = 0;
  };
  std::optional<Start> next(Ms timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[128];
    const ssize_t n = ::recv(fd_, buf, sizeof buf - 1, 0);
    if (n <= 0) return std::nullopt;
    buf[n] = '\0';
    Start s;
    long long ns = 0;
    std::istringstream in(buf);
    if (!(in >> s.pid >> s.slot >> ns)) return std::nullopt;
    s.ns = ns;
    return s;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// Median time in ms from SIGKILL of a worker to its replacement's main(), over `kills`
// kills of 2 bench_workers (in turn, each up for more than the 1 s healthy window, so
// that every crash is restarted at once), with `worker_cgroups`.
double respawn_median_ms(const std::string& worker_cgroups, int kills) {
  TempDir dir;
  Starts starts(dir.file("starts.sock"));
  DemoConfig c;
  c.address = local_address(free_port());
  c.count = 2;
  c.command = {fixture("bench_worker")};
  c.worker = "env = { BENCH_SOCKET = " + toml_string(starts.path()) + " }\n";
  c.preforkd = "worker_cgroups = " + toml_string(worker_cgroups) + "\n";
  Daemon d(toml(c));
  INFO("worker_cgroups = " << worker_cgroups);
  std::map<int, Starts::Start> current;
  while (current.size() < 2) {
    const auto s = starts.next(30s);
    INFO(d.log());
    REQUIRE(s);
    current[s->slot] = *s;
  }
  REQUIRE(wait_workers_ready(d, 2));
  const std::string cgroup = cgroup_of_slot(d, 0);
  CHECK(cgroup.empty() == (worker_cgroups == "off"));

  std::vector<double> ms;
  for (int k = 0; k < kills; ++k) {
    const int slot = k % 2;
    const Starts::Start victim = current.at(slot);
    // Past the healthy window: a crash before it is backed off, which is not measured here.
    wait_until([&] { return mono_ns() >= victim.ns + 1'200'000'000; }, 5s);
    const std::int64_t t0 = mono_ns();
    REQUIRE(::kill(victim.pid, SIGKILL) == 0);
    std::optional<Starts::Start> next;
    while (!next) {
      const auto s = starts.next(30s);
      INFO(d.log());
      REQUIRE(s);
      current[s->slot] = *s;
      if (s->slot == slot && s->pid != victim.pid) next = s;
    }
    ms.push_back(static_cast<double>(next->ns - t0) / 1e6);
  }
  std::sort(ms.begin(), ms.end());
  std::ostringstream all;
  for (double m : ms) all << m << " ";
  UNSCOPED_INFO("respawn ms with worker_cgroups = " << worker_cgroups << ": " << all.str());
  stop_cleanly(d);
  return ms[ms.size() / 2];
}

}  // namespace

TEST_CASE("worker cgroups: a respawn takes about as long as without them") {
  require_cgroups();
  // The same machine, one after the other: compare the medians. Before the cgroup work
  // left the respawn path, "on" took ~12 ms against ~1.2 ms (a write to cgroup.procs waits
  // for an RCU grace period, unless one has just passed: some kills were fast even then);
  // the bench (preforkd_bench respawn) measures the 1.3 target, this guards against that
  // regression, with room for a loaded machine.
  const double off = respawn_median_ms("off", 12);
  const double on = respawn_median_ms("on", 12);
  INFO("median respawn: " << off << " ms off, " << on << " ms on");
  CHECK(on <= 2 * off + 2.0);
}

TEST_CASE("worker cgroups: after a crash the old tree is killed while the replacement runs") {
  require_cgroups();
  const int port = free_port();
  Daemon d(tree_config(port, "TREE_SETSID_CHILD = \"1\"", "on"));
  INFO(d.log());
  auto first = tree_hello(port);
  REQUIRE(first);
  REQUIRE(first->children.size() == 1);
  const std::string old_cgroup = cgroup_of_slot(d, 0);
  REQUIRE(!old_cgroup.empty());
  CHECK(in_cgroup(first->pid, old_cgroup));
  CHECK(in_cgroup(first->children[0], old_cgroup));

  for (int kill = 1; kill <= 3; ++kill) {
    INFO("kill " << kill);
    const pid_t hidden = first->children[0];
    const std::string before = cgroup_of_slot(d, 0);
    REQUIRE(::kill(first->pid, SIGKILL) == 0);
    auto next = tree_hello_other_than(port, first->pid);
    REQUIRE(next);
    REQUIRE(next->children.size() == 1);
    // The setsid() child of the dead worker goes, although its replacement already runs.
    CHECK(wait_until([&] { return !process_alive(hidden); }));
    CHECK(wait_until([&] { return !exists(before); }));
    // The replacement and its own child are in a new cgroup, which status names.
    std::string now;
    CHECK(wait_until([&] {
      now = cgroup_of_slot(d, 0);
      return !now.empty() && now != before;
    }));
    CHECK(exists(now));
    CHECK(in_cgroup(next->pid, now));
    CHECK(in_cgroup(next->children[0], now));
    CHECK(process_alive(next->children[0]));
    first = next;
  }
  // Nothing piles up: the slot's cgroup and its spare, made ahead for the next start.
  const std::string base = old_cgroup.substr(0, old_cgroup.rfind('/'));
  std::vector<std::string> left;
  CHECK(wait_until([&] {
    left = subdirs(base, "slot-");
    return left.size() == 2;
  }));
  INFO("left: " << left.size());
  CHECK(left.size() == 2);
  stop_cleanly(d);
  CHECK(!exists(base));
}

TEST_CASE("worker cgroups: a slot scaled away leaves no cgroup behind") {
  require_cgroups();
  const int port = free_port();
  Daemon d(tree_config(port, "", "on", 2));
  INFO(d.log());
  const auto status = wait_workers_ready(d, 2);
  REQUIRE(status);
  const std::string some = cgroup_of_slot(d, 0);
  REQUIRE(!some.empty());
  const std::string base = some.substr(0, some.rfind('/'));
  // Each slot: the cgroup its worker runs in, and the spare for its next start.
  CHECK(wait_until([&] { return subdirs(base, "slot-1.").size() == 2; }));
  REQUIRE(ctl(d, {"scale", "1"}).exit_code == 0);
  CHECK(wait_until([&] { return subdirs(base, "slot-1.").empty(); }));
  CHECK(subdirs(base, "slot-0.").size() == 2);
  // Back to 2: the new slot 1 starts in a cgroup of its own again.
  REQUIRE(ctl(d, {"scale", "2"}).exit_code == 0);
  REQUIRE(wait_workers_ready(d, 2));
  CHECK(wait_until([&] { return !cgroup_of_slot(d, 1).empty(); }));
  stop_cleanly(d);
  CHECK(!exists(base));
}
