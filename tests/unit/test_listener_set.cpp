// ListenerSet against real sockets on the loopback interface.

#include <preforkd/os/listener_set.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <numeric>
#include <thread>
#include <atomic>
#include <fstream>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <unistd.h>
#include <vector>

#include "../support/skip.hpp"

using preforkd::Address;
using preforkd::AddressFamily;
using preforkd::ListenConfig;
using preforkd::ListenMode;
using preforkd::os::BpfInsn;
using preforkd::os::Fd;
using preforkd::os::ListenerSet;
using preforkd::os::reuseport_steering_program;

namespace {

constexpr int kConnections = 20;

ListenConfig tcp4(const std::string& name, std::uint16_t port, ListenMode mode = ListenMode::reuseport) {
  ListenConfig c;
  c.name = name;
  c.address.family = AddressFamily::ipv4;
  c.address.host = "127.0.0.1";
  c.address.port = port;
  c.address.text = "127.0.0.1:" + std::to_string(port);
  c.mode = mode;
  c.backlog = 128;
  return c;
}

ListenConfig unix_listener(const std::string& name, const std::string& path) {
  ListenConfig c;
  c.name = name;
  c.address.family = AddressFamily::unix_path;
  c.address.path = path;
  c.address.text = "unix:" + path;
  return c;
}

std::uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
  return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                  : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

// A port nobody used a moment ago (port 0 would give every group member a port of its own).
std::uint16_t free_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  return local_port(fd.get());
}

// Opens `slots` reuseport sockets on a free port, retrying if another process takes it first.
ListenerSet open_tcp(int slots, ListenMode mode = ListenMode::reuseport) {
  for (int attempt = 0;; ++attempt) {
    auto set = ListenerSet::open({tcp4("http", free_port(), mode)}, slots);
    if (set || attempt == 5) {
      INFO((set ? "" : set.error()));
      REQUIRE(set.ok());
      return std::move(*set);
    }
  }
}

Fd listening_socket(int family, const sockaddr* sa, socklen_t len) {
  Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  REQUIRE(::bind(fd.get(), sa, len) == 0);
  REQUIRE(::listen(fd.get(), 16) == 0);
  return fd;
}

std::vector<Fd> connect_many(std::uint16_t port, int count) {
  std::vector<Fd> clients;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < count; ++i) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    // Completes against the backlog: nobody needs to accept.
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
    clients.push_back(std::move(fd));
  }
  return clients;
}

// Accepts from every socket until `expected` connections arrived or 2 s passed; the
// count per socket. (The final ACK may still be in flight when connect() returns.)
std::vector<int> accept_all(const std::vector<int>& fds, int expected) {
  std::vector<int> counts(fds.size(), 0);
  int total = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (total < expected && std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < fds.size(); ++i) {
      // The sockets are blocking (as workers get them): accept only what waits.
      for (pollfd p{fds[i], POLLIN, 0}; ::poll(&p, 1, 0) == 1; p.revents = 0) {
        const int c = ::accept4(fds[i], nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) break;
        ::close(c);
        ++counts[i];
        ++total;
      }
    }
    if (total < expected) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return counts;
}

std::vector<int> slot_fds(const ListenerSet& set) {
  std::vector<int> fds;
  for (int slot = 0; slot < set.slot_count(); ++slot) fds.push_back(set.fds_for_slot(slot).at(0));
  return fds;
}

std::vector<int> connect_and_count(const ListenerSet& set, int count) {
  const auto fds = slot_fds(set);
  auto clients = connect_many(local_port(fds.at(0)), count);
  return accept_all(fds, count);
}

int open_fd_count() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  while (::readdir(dir) != nullptr) ++n;
  ::closedir(dir);
  return n;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/preforkd-listener-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  path.copy(un.sun_path, sizeof un.sun_path - 1);
  return un;
}

// Runs a steering program as the kernel would, with `draw` as the random number.
std::uint32_t run(const std::vector<BpfInsn>& p, std::uint32_t draw) {
  std::uint32_t a = 0;
  for (std::size_t pc = 0; pc < p.size(); ++pc) {
    const BpfInsn& in = p[pc];
    switch (in.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        REQUIRE(in.k == static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_RANDOM));
        a = draw;
        break;
      case BPF_ALU | BPF_MOD | BPF_K:
        REQUIRE(in.k != 0);
        a %= in.k;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        pc += a == in.k ? in.jt : in.jf;
        break;
      case BPF_RET | BPF_K:
        return in.k;
      case BPF_RET | BPF_A:
        return a;
      default:
        FAIL("unexpected instruction " << in.code);
    }
  }
  FAIL("the program ran off its end");
  return 0;
}

bool kernel_accepts(const std::vector<BpfInsn>& p) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  REQUIRE(::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  REQUIRE(::listen(fd.get(), 1) == 0);
  std::vector<sock_filter> f;
  for (const BpfInsn& in : p) f.push_back({in.code, in.jt, in.jf, in.k});
  sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
  return ::setsockopt(fd.get(), SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0;
}

}  // namespace

TEST_CASE("reuseport listeners get one socket per slot - in one group") {
  auto set = open_tcp(3);
  REQUIRE(set.slot_count() == 3);
  const auto fds = slot_fds(set);
  REQUIRE(fds.size() == 3);
  std::vector<ino_t> inodes;
  for (int fd : fds) {
    int listening = 0;
    socklen_t len = sizeof listening;
    REQUIRE(::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0);
    CHECK(listening == 1);
    CHECK(local_port(fd) == local_port(fds[0]));
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);  // blocking, as systemd hands sockets
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    inodes.push_back(st.st_ino);
  }
  CHECK(fds[0] != fds[1]);
  CHECK(fds[1] != fds[2]);
  CHECK(fds[0] != fds[2]);
  CHECK(inodes[0] != inodes[1]);
  CHECK(inodes[1] != inodes[2]);
  CHECK(set.fds_for_slot(3).empty());
  CHECK(set.fds_for_slot(-1).empty());
  CHECK(set.fd_names() == "http");
}

TEST_CASE("shared listeners give every slot the same socket - fds follow config order") {
  TempDir dir;
  const std::string path = dir.path + "/admin.sock";
  const auto port = free_port();
  auto set = ListenerSet::open(
      {tcp4("http", port), tcp4("api", free_port(), ListenMode::shared), unix_listener("admin", path)}, 2);
  REQUIRE(set.ok());
  CHECK(set->fd_names() == "http:api:admin");
  const auto slot0 = set->fds_for_slot(0);
  const auto slot1 = set->fds_for_slot(1);
  REQUIRE(slot0.size() == 3);
  REQUIRE(slot1.size() == 3);
  CHECK(slot0[0] != slot1[0]);
  CHECK(slot0[1] == slot1[1]);
  CHECK(slot0[2] == slot1[2]);
  CHECK(local_port(slot0[0]) == port);
  CHECK(is_socket(path));
  CHECK(set->accept_queue_depth(2, 0) == -1);  // unix
  CHECK(set->accept_queue_depth(3, 0) == -1);  // no such listener
}

TEST_CASE("port 0 still makes one group: the first socket picks the port") {
  auto set = ListenerSet::open({tcp4("http", 0)}, 3);
  REQUIRE(set.ok());
  const auto fds = slot_fds(*set);
  CHECK(local_port(fds[0]) != 0);
  CHECK(local_port(fds[1]) == local_port(fds[0]));
  REQUIRE(set->steer({2}).ok());
  CHECK(connect_and_count(*set, kConnections) == std::vector<int>{0, 0, kConnections});
}

TEST_CASE("steering sends new connections only to the live slots") {
  auto set = open_tcp(3);
  REQUIRE(set.steer({1}).ok());
  CHECK(connect_and_count(set, kConnections) == std::vector<int>{0, kConnections, 0});

  REQUIRE(set.steer({0, 2}).ok());
  const auto counts = connect_and_count(set, kConnections);
  CHECK(counts[1] == 0);
  CHECK(counts[0] + counts[2] == kConnections);
  CHECK(counts[0] > 0);  // each misses with probability 2^-20
  CHECK(counts[2] > 0);

  REQUIRE(set.steer({}).ok());
  const auto spread = connect_and_count(set, kConnections);
  CHECK(spread[0] + spread[1] + spread[2] == kConnections);

  CHECK_FALSE(set.steer({3}).ok());
  CHECK_FALSE(set.steer({-1}).ok());
}

TEST_CASE("steer skips an unchanged live set until the slot count changes") {
  auto set = open_tcp(3);
  REQUIRE(set.steer({1}).ok());
  // Remove the program behind the set's back: an unchanged steer() does not notice.
  const int unused = 0;
  const int member = set.fds_for_slot(0)[0];
  REQUIRE(::setsockopt(member, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof unused) == 0);
  REQUIRE(set.steer({1}).ok());
  CHECK(connect_and_count(set, kConnections)[1] < kConnections);  // hashed: misses with probability 3^-20

  REQUIRE(set.grow(4).ok());
  REQUIRE(set.steer({1}).ok());
  CHECK(connect_and_count(set, kConnections) == std::vector<int>{0, kConnections, 0, 0});
}

TEST_CASE("accept_queue_depth counts the connections nobody accepted yet") {
  auto set = open_tcp(2);
  REQUIRE(set.steer({0}).ok());
  CHECK(set.accept_queue_depth(0, 0) == 0);
  auto clients = connect_many(local_port(set.fds_for_slot(0)[0]), 5);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (set.accept_queue_depth(0, 0) < 5 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(set.accept_queue_depth(0, 0) == 5);
  CHECK(set.accept_queue_depth(0, 1) == 0);
  Fd accepted(::accept4(set.fds_for_slot(0)[0], nullptr, nullptr, SOCK_CLOEXEC));
  REQUIRE(accepted.valid());
  CHECK(set.accept_queue_depth(0, 0) == 4);
  CHECK(set.accept_queue_depth(0, 2) == -1);  // no such slot
}

TEST_CASE("grow adds slots at the end of the group and shrink removes them from the end") {
  auto set = open_tcp(2);
  const auto before = slot_fds(set);
  REQUIRE(set.grow(4).ok());
  REQUIRE(set.slot_count() == 4);
  const auto after = slot_fds(set);
  CHECK(after[0] == before[0]);
  CHECK(after[1] == before[1]);
  CHECK(local_port(after[3]) == local_port(after[0]));
  REQUIRE(set.steer({3}).ok());
  CHECK(connect_and_count(set, kConnections) == std::vector<int>{0, 0, 0, kConnections});
  REQUIRE(set.steer({2}).ok());
  CHECK(connect_and_count(set, kConnections) == std::vector<int>{0, 0, kConnections, 0});

  set.shrink(2);
  REQUIRE(set.slot_count() == 2);
  CHECK(set.fds_for_slot(2).empty());
  CHECK(::fcntl(after[3], F_GETFD) == -1);  // closed
  REQUIRE(set.steer({1}).ok());
  CHECK(connect_and_count(set, kConnections) == std::vector<int>{0, kConnections});
  REQUIRE(set.steer({0}).ok());
  CHECK(connect_and_count(set, kConnections) == std::vector<int>{kConnections, 0});
  CHECK(set.grow(1).ok());  // nothing to do
  CHECK(set.slot_count() == 2);
}

TEST_CASE("a port held by another socket fails with the listener and the address") {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Fd holder = listening_socket(AF_INET, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  const auto port = local_port(holder.get());
  const int fds_before = open_fd_count();

  auto set = ListenerSet::open({tcp4("http", port)}, 3);
  REQUIRE_FALSE(set.ok());
  // The holder is named: this very process.
  CHECK(set.error() == "listener 'http': failed to bind '127.0.0.1:" + std::to_string(port) +
                           "': address already in use by pid " + std::to_string(::getpid()) + " (unit_tests)");
  CHECK(open_fd_count() == fds_before);

  SECTION("a later listener failing closes the earlier ones") {
    const auto first = free_port();
    auto two = ListenerSet::open({tcp4("ok", first), tcp4("taken", port, ListenMode::shared)}, 2);
    REQUIRE_FALSE(two.ok());
    CHECK(two.error().find("listener 'taken'") == 0);
    CHECK(open_fd_count() == fds_before);
    sin.sin_port = htons(first);
    Fd again = listening_socket(AF_INET, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  }
}

TEST_CASE("grow that fails half-way changes nothing") {
  auto set = open_tcp(2);
  const auto before = slot_fds(set);
  const int fds_before = open_fd_count();
  // Room for exactly one more fd: the first new socket opens, the second cannot.
  const int next_fd = ::dup(0);
  REQUIRE(next_fd >= 0);
  ::close(next_fd);
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  rlimit tight = old;
  tight.rlim_cur = static_cast<rlim_t>(next_fd) + 1;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
  const auto grown = set.grow(4);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);

  REQUIRE_FALSE(grown.ok());
  CHECK(grown.error().find("listener 'http': failed to create a socket for '127.0.0.1:") == 0);
  CHECK(grown.error().find("too many open files") != std::string::npos);
  CHECK(set.slot_count() == 2);
  CHECK(slot_fds(set) == before);
  CHECK(open_fd_count() == fds_before);
  REQUIRE(set.steer({1}).ok());
  CHECK(connect_and_count(set, kConnections) == std::vector<int>{0, kConnections});
}

TEST_CASE("unix listeners replace a stale socket file - never a live one or a plain file") {
  TempDir dir;
  const std::string path = dir.path + "/app.sock";
  const sockaddr_un un = unix_address(path);

  SECTION("stale socket file") {
    {
      Fd dead(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      REQUIRE(::bind(dead.get(), reinterpret_cast<const sockaddr*>(&un), sizeof un) == 0);
    }
    REQUIRE(is_socket(path));
    {
      auto set = ListenerSet::open({unix_listener("admin", path)}, 4);
      INFO((set ? "" : set.error()));
      REQUIRE(set.ok());
      CHECK(is_socket(path));
      Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      CHECK(::connect(client.get(), reinterpret_cast<const sockaddr*>(&un), sizeof un) == 0);
      // Moved, the file stays until the last owner goes.
      ListenerSet moved = std::move(*set);
      CHECK(moved.fds_for_slot(3).size() == 1);
    }
    CHECK_FALSE(exists(path));  // we created it, so we removed it
  }
  SECTION("live server") {
    Fd live = listening_socket(AF_UNIX, reinterpret_cast<const sockaddr*>(&un), sizeof un);
    {
      auto set = ListenerSet::open({unix_listener("admin", path)}, 1);
      REQUIRE_FALSE(set.ok());
      CHECK(set.error() ==
            "listener 'admin': failed to bind 'unix:" + path + "': address in use by a live server");
    }
    CHECK(is_socket(path));  // not ours: left alone
  }
  SECTION("regular file") {
    Fd file(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    REQUIRE(file.valid());
    auto set = ListenerSet::open({unix_listener("admin", path)}, 1);
    REQUIRE_FALSE(set.ok());
    CHECK(set.error().find("refusing to remove it") != std::string::npos);
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
  }
  SECTION("a file replaced by someone else is not ours to remove") {
    {
      auto set = ListenerSet::open({unix_listener("admin", path)}, 1);
      REQUIRE(set.ok());
      REQUIRE(::unlink(path.c_str()) == 0);
      Fd other(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    }
    CHECK(exists(path));
  }
}

TEST_CASE("IPv6 loopback listeners work when the host has ::1") {
  Fd probe(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = in6addr_loopback;
  if (!probe.valid() || ::bind(probe.get(), reinterpret_cast<sockaddr*>(&sin6), sizeof sin6) != 0) {
    SKIP_OR_FAIL("no IPv6 loopback here");
  }
  const auto port = local_port(probe.get());
  probe.reset();
  ListenConfig c;
  c.name = "v6";
  c.address.family = AddressFamily::ipv6;
  c.address.host = "::1";
  c.address.port = port;
  c.address.text = "[::1]:" + std::to_string(port);
  auto set = ListenerSet::open({c}, 2);
  INFO((set ? "" : set.error()));
  REQUIRE(set.ok());
  const int fd = set->fds_for_slot(1)[0];
  CHECK(local_port(fd) == port);
  int v6only = 0;
  socklen_t len = sizeof v6only;
  REQUIRE(::getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) == 0);
  CHECK(v6only == 1);
  REQUIRE(set->steer({1}).ok());
}

TEST_CASE("reuseport_steering_program shapes") {
  SECTION("identity: the draw modulo the count is the slot") {
    const auto p = reuseport_steering_program({0, 1, 2});
    REQUIRE(p.size() == 3);
    CHECK(p[1].code == (BPF_ALU | BPF_MOD | BPF_K));
    CHECK(p[1].k == 3);
    CHECK(p[2].code == (BPF_RET | BPF_A));
    for (std::uint32_t r = 0; r < 9; ++r) CHECK(run(p, r) == r % 3);
    CHECK(kernel_accepts(p));
  }
  SECTION("one live slot is one return") {
    const auto p = reuseport_steering_program({2});
    REQUIRE(p.size() == 1);
    CHECK(run(p, 12345) == 2);
    CHECK(kernel_accepts(p));
  }
  SECTION("no live slot returns an index that falls back to the kernel's hash") {
    const auto p = reuseport_steering_program({});
    REQUIRE(p.size() == 1);
    CHECK(run(p, 0) >= 1024);
    CHECK(kernel_accepts(p));
  }
  SECTION("a chain maps every draw onto the live slots") {
    const std::vector<int> live{0, 2, 5};
    const auto p = reuseport_steering_program(live);
    for (std::uint32_t r = 0; r < 12; ++r) CHECK(run(p, r) == static_cast<std::uint32_t>(live[r % 3]));
    CHECK(kernel_accepts(p));
  }
  SECTION("1000 live slots fit in BPF_MAXINSNS and the kernel takes them") {
    std::vector<int> live;
    for (int i = 1; i <= 1000; ++i) live.push_back(i);  // not the identity: the longest shape
    const auto p = reuseport_steering_program(live);
    CHECK(p.size() <= BPF_MAXINSNS);
    for (std::uint32_t r = 0; r < 1000; ++r) REQUIRE(run(p, r) == r + 1);
    CHECK(run(p, 0xffffffffu) == static_cast<std::uint32_t>(live[0xffffffffu % 1000]));
    CHECK(kernel_accepts(p));
  }
}

TEST_CASE("balance = load listeners follow the balanced set - hash listeners the live set") {
  ListenConfig hashed = tcp4("hashed", free_port());
  hashed.balance = preforkd::ListenBalance::hash;
  auto set = ListenerSet::open({tcp4("loaded", free_port()), hashed}, 3);
  REQUIRE(set.ok());
  CHECK(set->balances_on_load());
  // Live {0, 2}; of those only slot 2 waits.
  REQUIRE(set->steer({0, 2}, {2}).ok());
  std::vector<int> loaded, hashed_fds;
  for (int slot = 0; slot < 3; ++slot) {
    loaded.push_back(set->fds_for_slot(slot).at(0));
    hashed_fds.push_back(set->fds_for_slot(slot).at(1));
  }
  {
    auto clients = connect_many(local_port(loaded[0]), kConnections);
    CHECK(accept_all(loaded, kConnections) == std::vector<int>{0, 0, kConnections});
  }
  {
    auto clients = connect_many(local_port(hashed_fds[0]), kConnections);
    const auto counts = accept_all(hashed_fds, kConnections);
    CHECK(counts[1] == 0);
    CHECK(counts[0] > 0);  // misses with probability 2^-20
    CHECK(counts[2] > 0);
  }
  // A new balanced set re-steers only the load listener.
  REQUIRE(set->steer({0, 2}, {0}).ok());
  {
    auto clients = connect_many(local_port(loaded[0]), kConnections);
    CHECK(accept_all(loaded, kConnections) == std::vector<int>{kConnections, 0, 0});
  }
  CHECK_FALSE(set->steer({0}, {3}).ok());
}

TEST_CASE("socket inodes and the balanced queue depth of a slot") {
  ListenConfig hashed = tcp4("hashed", free_port());
  hashed.balance = preforkd::ListenBalance::hash;
  auto set = ListenerSet::open({tcp4("loaded", free_port()), hashed}, 2);
  REQUIRE(set.ok());
  const auto inodes = set->socket_inodes_for_slot(1);
  REQUIRE(inodes.size() == 2);
  struct stat st {};
  REQUIRE(::fstat(set->fds_for_slot(1).at(0), &st) == 0);
  CHECK(inodes[0] == st.st_ino);
  CHECK(set->socket_inodes_for_slot(2).empty());
  REQUIRE(set->steer({1}, {1}).ok());
  auto hashed_clients = connect_many(local_port(set->fds_for_slot(1).at(1)), 2);  // not counted: hash listener
  auto clients = connect_many(local_port(set->fds_for_slot(1).at(0)), 3);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (set->balanced_queue_depth(1) < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(set->balanced_queue_depth(1) == 3);
  CHECK(set->balanced_queue_depth(0) == 0);

  // On a port of its own: `hashed`'s port is held by `set`, and a second set is refused it.
  ListenConfig hashed_only = tcp4("hashed", free_port());
  hashed_only.balance = preforkd::ListenBalance::hash;
  auto none = ListenerSet::open({hashed_only}, 1);
  REQUIRE(none.ok());
  CHECK_FALSE(none->balances_on_load());
}

TEST_CASE("a port held by another socket with SO_REUSEPORT is refused in every mode - naming the holder") {
  for (const ListenMode mode : {ListenMode::reuseport, ListenMode::shared}) {
    Fd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    REQUIRE(::setsockopt(holder.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0);
    REQUIRE(::setsockopt(holder.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(holder.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
    REQUIRE(::listen(holder.get(), 16) == 0);
    const auto port = local_port(holder.get());
    auto set = ListenerSet::open({tcp4("http", port, mode)}, 2);
    REQUIRE_FALSE(set.ok());
    CHECK(set.error() == "listener 'http': failed to bind '127.0.0.1:" + std::to_string(port) +
                             "': address already in use by pid " + std::to_string(::getpid()) + " (unit_tests)");
  }
}

TEST_CASE("a reopen may add an address that overlaps the set's own sockets") {
  ListenerSet set = open_tcp(2);
  const auto port = local_port(set.fds_for_slot(0).at(0));
  ListenConfig wildcard = tcp4("any", port);
  wildcard.address.host = "0.0.0.0";
  wildcard.address.text = "0.0.0.0:" + std::to_string(port);
  auto next = ListenerSet::reopen({set.configs().at(0), wildcard}, set);
  INFO((next ? "" : next.error()));
  REQUIRE(next.ok());
  CHECK(next->fds_for_slot(1).size() == 2);
}

TEST_CASE("defer_accept and fastopen are set on every slot's socket and changed in place by a reopen") {
  auto read_options = [](int fd) {
    int defer = -1;
    int fastopen = -1;
    socklen_t len = sizeof defer;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len) == 0);
    len = sizeof fastopen;
    REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &fastopen, &len) == 0);
    return std::make_pair(defer, fastopen);
  };
  ListenConfig c = tcp4("http", free_port());
  c.defer_accept = std::chrono::seconds(1);
  c.fastopen = 16;
  auto set = ListenerSet::open({c}, 2);
  REQUIRE(set.ok());
  for (int slot = 0; slot < 2; ++slot) CHECK(read_options(set->fds_for_slot(slot).at(0)) == std::make_pair(1, 16));
  c.defer_accept = std::chrono::milliseconds(0);
  c.fastopen = 32;
  auto next = ListenerSet::reopen({c}, *set);
  REQUIRE(next.ok());
  for (int slot = 0; slot < 2; ++slot) CHECK(read_options(next->fds_for_slot(slot).at(0)) == std::make_pair(0, 32));
}

namespace {

// Blocks a thread in accept() on `fd` and returns once the kernel shows it asleep there
// (/proc/self/task/<tid>/syscall starts with accept's or accept4's number).
class AcceptingThread {
 public:
  explicit AcceptingThread(int fd) : fd_(fd), thread_([this] {
    tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
    accepted_ = ::accept(fd_, nullptr, nullptr);
    error_ = errno;
    done_ = true;
  }) {}
  // A thread still in accept() is woken by shutting the socket down (accept fails).
  ~AcceptingThread() {
    if (!done_) ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    if (accepted_ >= 0) ::close(accepted_);
  }
  AcceptingThread(const AcceptingThread&) = delete;
  AcceptingThread& operator=(const AcceptingThread&) = delete;
  // What accept() failed with, once it returned (for a failure's report).
  [[nodiscard]] int error() const { return error_.load(); }
  [[nodiscard]] const std::string& last_seen() const { return last_seen_; }
  bool wait_blocked() const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (const pid_t tid = tid_.load(); tid > 0) {
        std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
        std::string nr;
        in >> nr;
        last_seen_ = nr;
        if (nr == std::to_string(SYS_accept) || nr == std::to_string(SYS_accept4)) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  [[nodiscard]] int accepted() const { return accepted_.load(); }

 private:
  int fd_;
  mutable std::string last_seen_;  // the last syscall number read (for a failure's report)
  std::atomic<int> error_{0};
  std::atomic<pid_t> tid_{0};
  std::atomic<int> accepted_{-1};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("eBPF steering sends a new connection to the slot whose socket a thread waits on") {
  if (auto why = preforkd::os::reuseport_steering_unavailable()) {
    // CI runs as root on a kernel with BTF: there the program must load.
    if (::geteuid() == 0) FAIL("as root: " << *why);
    SKIP_OR_FAIL("eBPF steering needs root: " << *why);
  }
  // Five rounds with a fresh set each: the waiting slot moves, the other three have no
  // thread. Were waiting not seen, each round would hit it by chance 1 time in 4.
  for (int waiter : {2, 0, 3, 1, 2}) {
    INFO("waiting slot " << waiter);
    auto set = ListenerSet::open({tcp4("loaded", free_port())}, 4);
    REQUIRE(set.ok());
    set->use_load_steering(preforkd::os::LoadSteering::ebpf);
    REQUIRE(set->steer({0, 1, 2, 3}, {0, 1, 2, 3}).ok());
    CHECK(set->balanced_by(0) == "ebpf");
    CHECK_FALSE(set->balances_on_load());  // nothing for the sampler to do
    std::vector<int> fds;
    for (int slot = 0; slot < 4; ++slot) fds.push_back(set->fds_for_slot(slot).at(0));
    const int waiting_fd = fds[static_cast<std::size_t>(waiter)];
    // The master holds its sockets non-blocking; a synchronous worker's accept() blocks.
    REQUIRE(::fcntl(waiting_fd, F_SETFL, ::fcntl(waiting_fd, F_GETFL) & ~O_NONBLOCK) == 0);
    AcceptingThread accepting(waiting_fd);
    const bool blocked = accepting.wait_blocked();
    INFO("accept() returned " << accepting.accepted() << ", errno " << accepting.error() << "; syscall "
                              << accepting.last_seen());
    REQUIRE(blocked);
    auto clients = connect_many(local_port(fds[0]), 1);
    REQUIRE(clients.size() == 1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (accepting.accepted() < 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const bool reached = accepting.accepted() >= 0;
    CHECK(reached);
    const auto counts = set->steer_counts(0);
    REQUIRE(counts);
    CHECK(counts->to_waiting == 1);
    CHECK(counts->to_busy == 0);
    for (int slot = 0; slot < 4; ++slot)
      if (slot != waiter || reached) CHECK(set->accept_queue_depth(0, slot) == 0);
  }
}

TEST_CASE("a load listener whose eBPF program cannot load keeps steering to the live slots") {
  // Capabilities are per thread: this thread drops all of them, so bpf() is refused to it
  // as to an unprivileged master, and the set must fall back to classic BPF.
  std::string failure;
  std::string balanced_by;
  bool samples = false;
  std::vector<int> counts;
  std::thread unprivileged([&] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none[2]{};
    if (::syscall(SYS_capset, &header, none) != 0) {
      failure = "capset failed";
      return;
    }
    auto set = ListenerSet::open({tcp4("loaded", free_port())}, 3);
    if (!set) {
      failure = set.error();
      return;
    }
    set->use_load_steering(preforkd::os::LoadSteering::ebpf);
    // Classic BPF steers it: that succeeds, and the program's failure is kept for the caller.
    const preforkd::Status st = set->steer({0, 2}, {0, 2});
    failure = st ? set->ebpf_error(0) : "steer failed: " + st.error();
    balanced_by = set->balanced_by(0);
    samples = set->balances_on_load();
    std::vector<int> fds;
    for (int slot = 0; slot < 3; ++slot) fds.push_back(set->fds_for_slot(slot).at(0));
    auto clients = connect_many(local_port(fds[0]), kConnections);
    counts = accept_all(fds, kConnections);
  });
  unprivileged.join();
  INFO(failure);
  CHECK(failure.find("eBPF steering: cannot load the program: operation not permitted") != std::string::npos);
  CHECK(balanced_by == "sampler");
  CHECK(samples);
  REQUIRE(counts.size() == 3);
  CHECK(counts[1] == 0);  // slot 1 is not live: nothing for it
  CHECK(counts[0] + counts[2] == kConnections);
}

TEST_CASE("eBPF steering keeps balancing after the slot count shrinks and grows") {
  if (auto why = preforkd::os::reuseport_steering_unavailable()) {
    // CI runs as root on a kernel with BTF: there the program must load.
    if (::geteuid() == 0) FAIL("as root: " << *why);
    WARN("eBPF steering not tested here: " << *why);
    return;
  }
  auto set = ListenerSet::open({tcp4("loaded", free_port())}, 4);
  REQUIRE(set.ok());
  set->use_load_steering(preforkd::os::LoadSteering::ebpf);
  REQUIRE(set->steer({0, 1, 2, 3}, {0, 1, 2, 3}).ok());
  REQUIRE(set->balanced_by(0) == "ebpf");
  // Every connection placed by the program, among exactly the live slots.
  const auto placed_by_program = [&](int slots) {
    const auto before = set->steer_counts(0);
    REQUIRE(before);
    const auto counts = connect_and_count(*set, kConnections);
    const auto after = set->steer_counts(0);
    REQUIRE(after);
    INFO("ebpf_error: " << set->ebpf_error(0));
    CHECK(set->balanced_by(0) == "ebpf");
    CHECK(set->ebpf_error(0).empty());
    REQUIRE(counts.size() == static_cast<std::size_t>(slots));
    CHECK(std::accumulate(counts.begin(), counts.end(), 0) == kConnections);
    CHECK(after->to_waiting + after->to_busy - before->to_waiting - before->to_busy == kConnections);
  };
  placed_by_program(4);

  // Scale down: slot 3's socket closes and leaves the program's map by itself; removing
  // its index then finds it empty (EINVAL from the kernel), which is no failure.
  set->shrink(3);
  REQUIRE(set->steer({0, 1, 2}, {0, 1, 2}).ok());
  placed_by_program(3);

  // Scale up again: a new socket joins the group and the map at index 3.
  REQUIRE(set->grow(4).ok());
  REQUIRE(set->steer({0, 1, 2, 3}, {0, 1, 2, 3}).ok());
  placed_by_program(4);

  // A removed slot whose socket is still open elsewhere (a dup, as a reloaded set holds)
  // stays in the map until it is removed: that removal works too, and nothing goes to it.
  Fd held(::fcntl(set->fds_for_slot(3).at(0), F_DUPFD_CLOEXEC, 3));
  REQUIRE(held.valid());
  set->shrink(3);
  REQUIRE(set->steer({0, 1, 2}, {0, 1, 2}).ok());
  placed_by_program(3);
}

TEST_CASE("non_blocking hands every socket over with O_NONBLOCK and a reopen refuses to change it") {
  TempDir dir;
  ListenConfig http = tcp4("http", free_port());
  ListenConfig api = tcp4("api", free_port(), ListenMode::shared);
  ListenConfig admin = unix_listener("admin", dir.path + "/admin.sock");
  for (ListenConfig* c : {&http, &api, &admin}) c->non_blocking = true;
  auto set = ListenerSet::open({http, api, admin}, 2);
  REQUIRE(set.ok());
  for (int slot = 0; slot < 2; ++slot)
    for (int fd : set->fds_for_slot(slot)) CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
  // A new slot's socket too.
  REQUIRE(set->grow(3).ok());
  CHECK((::fcntl(set->fds_for_slot(2).at(0), F_GETFL) & O_NONBLOCK) != 0);

  ListenConfig blocking = http;
  blocking.non_blocking = false;
  auto next = ListenerSet::reopen({blocking, api, admin}, *set);
  REQUIRE_FALSE(next.ok());
  CHECK(next.error().find("non_blocking cannot change on a socket the running workers share") != std::string::npos);
  CHECK((::fcntl(set->fds_for_slot(0).at(0), F_GETFL) & O_NONBLOCK) != 0);  // nothing changed
}

TEST_CASE("sockets taken back from the fd store get the configured O_NONBLOCK whatever they had") {
  for (const bool non_blocking : {false, true}) {
    INFO("non_blocking = " << non_blocking);
    ListenConfig http = tcp4("http", free_port());
    http.non_blocking = non_blocking;
    // As a previous master left it in the store: the other flag.
    ListenConfig previous = http;
    previous.non_blocking = !non_blocking;
    auto old = ListenerSet::open({previous}, 1);
    REQUIRE(old.ok());
    const int stored = ::fcntl(old->fds_for_slot(0).at(0), F_DUPFD_CLOEXEC, 3);
    REQUIRE(stored >= 0);
    auto taken = ListenerSet::take_inherited({http}, 2, {{stored}});
    REQUIRE(taken.ok());
    for (int slot = 0; slot < 2; ++slot)
      CHECK(((::fcntl(taken->fds_for_slot(slot).at(0), F_GETFL) & O_NONBLOCK) != 0) == non_blocking);
  }
}
