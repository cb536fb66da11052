// One listening socket from a listener's config, against the loopback interface: unix
// socket files, IPv6, a port another socket holds, and the socket options
// (src/os/listener_socket.cpp).

#include <fcntl.h>
#include <netinet/tcp.h>

#include "../support/skip.hpp"
#include "listener_helpers.hpp"

using namespace listener_test;
using testsupport::TempDir;

TEST_CASE("unix listeners replace a stale socket file - never a live one or a plain file") {
  const TempDir dir("preforkd-listener");
  const std::string path = dir.path() + "/app.sock";
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

TEST_CASE("non_blocking hands every socket over with O_NONBLOCK and a reopen refuses to change it") {
  const TempDir dir("preforkd-listener");
  ListenConfig http = tcp4("http", free_port());
  ListenConfig api = tcp4("api", free_port(), ListenMode::shared);
  ListenConfig admin = unix_listener("admin", dir.path() + "/admin.sock");
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
