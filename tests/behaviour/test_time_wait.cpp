// TIME_WAIT and SO_REUSEADDR (issue 17 item 8): a socket taken back from systemd's fd
// store gets SO_REUSEADDR, as the master's own sockets have it (without it, the
// connections it accepted hold the address in TIME_WAIT for 60 s after it closes and the
// next start cannot bind it); and a start that cannot bind because of such TIME_WAIT
// connections says so, instead of "address already in use" with nobody named.

#include "harness.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cstdio>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

using namespace bt;

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

// A listening socket on 127.0.0.1:port without SO_REUSEADDR (SO_REUSEPORT as asked).
int listener_without_reuseaddr(int port, bool reuseport) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (reuseport) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  const sockaddr_in sa = loopback(port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Connections in TIME_WAIT whose local address is 127.0.0.1:port, from /proc/net/tcp.
int time_wait_count(int port) {
  std::ifstream in("/proc/net/tcp");
  char local[32];
  std::snprintf(local, sizeof local, "0100007F:%04X", static_cast<unsigned>(port));
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string slot, from, to, state;
    fields >> slot >> from >> to >> state;
    if (from == local && state == "06") ++n;
  }
  return n;
}

// Leaves one connection in TIME_WAIT on 127.0.0.1:port, accepted by a socket without
// SO_REUSEADDR that is then closed: the server side closes first, so its end of the
// connection (local address 127.0.0.1:port) is the one that waits.
bool leave_time_wait(int port) {
  const int listener = listener_without_reuseaddr(port, false);
  if (listener < 0) return false;
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in sa = loopback(port);
  bool ok = ::connect(client, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
  const int server = ok ? ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC) : -1;
  ::close(listener);
  ok = server >= 0;
  if (ok) {
    ::close(server);
    char byte;
    ok = ::recv(client, &byte, 1, 0) == 0;  // the server's FIN
  }
  ::close(client);
  return ok && wait_until([&] { return time_wait_count(port) > 0; });
}

}  // namespace

TEST_CASE("time wait: a socket taken back from the fd store without SO_REUSEADDR gets it", "[time_wait][fd_store]") {
  const int port = free_port();
  const int stored = listener_without_reuseaddr(port, true);
  REQUIRE(stored >= 0);
  int reuse = -1;
  socklen_t len = sizeof reuse;
  REQUIRE(::getsockopt(stored, SOL_SOCKET, SO_REUSEADDR, &reuse, &len) == 0);
  REQUIRE(reuse == 0);
  Daemon d(toml({.address = local_address(port), .count = 1, .command = {fixture("sockopt_worker")}}), {}, 0,
           PassedFds{.fds = {stored}, .names = "preforkd.http.0", .close_in_test = true});
  const bool reported = d.wait_log("sockopt fd 3 generation 0:");
  INFO(d.log());
  REQUIRE(reported);
  CHECK(d.count_log("fd store: took 1 stored socket of listener 'http'") == 1);
  CHECK(d.count_log("reuse_addr=1 end") == 1);
}

TEST_CASE("time wait: a start blocked by TIME_WAIT connections names them as the cause", "[time_wait]") {
  const int port = free_port();
  REQUIRE(leave_time_wait(port));
  Daemon d(toml({.address = local_address(port), .count = 1}));
  const auto code = d.wait_exit();
  INFO(d.log());
  REQUIRE(code);
  CHECK(*code == 1);
  CHECK(d.count_log("failed to bind '127.0.0.1:" + std::to_string(port) +
                    "': address already in use by 1 connection in TIME_WAIT and no listener") == 1);
}
