// Refusing on a blocking listening socket (os/connection_reset, os/input_watch): the master
// accepts only what waits, so accept() never blocks, and the socket's flags (shared with
// the workers) are never touched.

#include <catch2/catch.hpp>
#include <preforkd/os/connection_reset.hpp>
#include <preforkd/os/fd.hpp>
#include <preforkd/os/input_watch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <vector>

using namespace preforkd;

namespace {

// A blocking listening socket on 127.0.0.1 and a port the kernel picks.
os::Fd blocking_listener(sockaddr_in& bound) {
  os::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::listen(fd.get(), 16) == 0);
  socklen_t len = sizeof bound;
  REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0);
  return fd;
}

os::Fd connect_to(const sockaddr_in& to) {
  os::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
  return fd;
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

}  // namespace

TEST_CASE("connection reset: on a blocking socket only the waiting connections are accepted with the flags untouched") {
  sockaddr_in at{};
  const os::Fd listener = blocking_listener(at);
  const int flags = ::fcntl(listener.get(), F_GETFL);
  REQUIRE((flags & O_NONBLOCK) == 0);
  auto watch = os::InputWatch::open(listener.get());
  REQUIRE(watch);
  CHECK_FALSE(readable(watch->fd()));

  // Nothing waits: returns at once (a blocking accept would hang this test).
  auto none = os::reset_waiting_connections(listener.get(), 8);
  REQUIRE(none);
  CHECK(none->reset == 0);
  CHECK(none->drained);

  std::vector<os::Fd> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connect_to(at));
  CHECK(readable(watch->fd()));  // the watch's own fd says so, the socket is not polled by libuv
  auto some = os::reset_waiting_connections(listener.get(), 2);  // the batch limit
  REQUIRE(some);
  CHECK(some->reset == 2);
  CHECK_FALSE(some->drained);
  auto rest = os::reset_waiting_connections(listener.get(), 8);
  REQUIRE(rest);
  CHECK(rest->reset == 1);
  CHECK(rest->drained);
  CHECK_FALSE(readable(watch->fd()));
  CHECK(::fcntl(listener.get(), F_GETFL) == flags);
  CHECK(rest->error.empty());
}

TEST_CASE("input watch: an fd that is no socket or closed is an error naming it") {
  auto bad = os::InputWatch::open(-1);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().find("fd -1") != std::string::npos);
}
