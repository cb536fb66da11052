// LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES in the master's environment that do not apply
// (issue 17 item 8): another process's LISTEN_PID, more fds than were passed, a wrong
// number of names. The fds they name are not taken, and not kept either: each open one is
// closed and named in one warning, so a leftover socket on the configured address does
// not stop the start with "address already in use by pid <the master itself>".

#include "control_helpers.hpp"

#include <catch2/catch.hpp>

#include <functional>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace bt;

namespace {

// A listening TCP socket on 127.0.0.1:port, as a previous process left it: the master's
// own address, with SO_REUSEPORT as a slot's socket has it.
int leftover_socket(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Starts preforkd on 127.0.0.1:port with a leftover socket on that address at fd 3 and
// the variables of `passed` (its fds filled in here); the socket's only holder is then the
// master. Checks that it starts, serves on the address, and names fd 3 once, after the
// reason why(master pid).
void starts_and_closes_fd_3(PassedFds passed, const std::function<std::string(pid_t)>& why) {
  const int port = free_port();
  const int leftover = leftover_socket(port);
  REQUIRE(leftover >= 0);
  passed.fds = {leftover};
  passed.close_in_test = true;  // from the start, only the master holds it
  Daemon d(toml({.address = local_address(port), .count = 2}), {}, 0, passed);
  const auto ready = wait_workers_ready(d, 2);
  const auto answer = http_get(port, "/");
  INFO(d.log());
  REQUIRE(ready);
  REQUIRE(answer);
  CHECK(answer->status == 200);
  const std::string closed = "closed fd 3 (TCP socket listening on 127.0.0.1:" + std::to_string(port) + ")";
  CHECK(d.count_log("LISTEN_FDS: " + why(d.pid()) + ", not taking the fds passed: " + closed) == 1);
  CHECK(d.count_log("(TCP socket listening on") == 1);
  CHECK(d.count_log("address already in use") == 0);
  // The master's own sockets on that address, not the leftover: it is gone from every process.
  CHECK(d.count_log("took") == 0);
}

}  // namespace

TEST_CASE("listen env: fds passed with another process's LISTEN_PID are closed and named", "[listen_env]") {
  // pid 1 is never preforkd here (the tests do not run it as PID 1).
  starts_and_closes_fd_3({.names = "preforkd.http.0", .listen_pid = "1"},
                         [](pid_t master) { return "LISTEN_PID=1 is not preforkd's pid " + std::to_string(master); });
}

TEST_CASE("listen env: a LISTEN_FDS larger than the fds passed closes the ones that are open", "[listen_env]") {
  starts_and_closes_fd_3({.names = "preforkd.http.0:preforkd.http.1", .listen_fds = 2},
                         [](pid_t) { return std::string("LISTEN_FDS=2 but fd 4 is not open"); });
}

TEST_CASE("listen env: LISTEN_FDNAMES with the wrong number of names closes the fds passed", "[listen_env]") {
  starts_and_closes_fd_3({.names = "preforkd.http.0:preforkd.http.1"},
                         [](pid_t) {
                           return std::string("LISTEN_FDNAMES='preforkd.http.0:preforkd.http.1' has 2 names for LISTEN_FDS=1");
                         });
}
