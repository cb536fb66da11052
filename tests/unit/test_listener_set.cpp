// ListenerSet against real sockets on the loopback interface: one socket per slot in one
// SO_REUSEPORT group, growing and shrinking at its end, queue depths, failures that change
// nothing (src/os/listener_set.cpp).

#include <fcntl.h>
#include <sys/resource.h>

#include "listener_helpers.hpp"

using namespace listener_test;
using testsupport::TempDir;

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
  const TempDir dir("preforkd-listener");
  const std::string path = dir.path() + "/admin.sock";
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
