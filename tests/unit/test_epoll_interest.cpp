// The interest lists of epoll instances from /proc: the fdinfo parser on real samples
// (kernel 6.18), and this process's own epoll sets read back.

#include <preforkd/os/epoll_interest.hpp>
#include <preforkd/os/fd.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace preforkd::os;

namespace {

// Captured from /proc/<pid>/fdinfo/<epfd> on this kernel: a listening socket with
// EPOLLIN (19 = IN|ERR|HUP), the same with EPOLLEXCLUSIVE (nginx), then with its
// events modified to 0 (ERR|HUP stay), and a libuv loop with two entries.
constexpr const char* with_in =
    "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n"
    "tfd:        3 events:       19 data:                3  pos:0 ino:f0a2e1 sdev:9\n";
constexpr const char* exclusive =
    "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n"
    "tfd:        3 events: 10000019 data:     7f5900000003  pos:0 ino:f0a2e1 sdev:9\n";
constexpr const char* disabled =
    "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n"
    "tfd:        3 events:       18 data:                3  pos:0 ino:f0a2e1 sdev:9\n";
constexpr const char* two =
    "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1039\n"
    "tfd:        5 events:       19 data:                5  pos:0 ino:3f2 sdev:e\n"
    "tfd:       12 events:       1d data:                c  pos:0 ino:f0a30b sdev:9\n";

Fd listening_socket() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  REQUIRE(::listen(fd.get(), 8) == 0);
  return fd;
}

std::uint64_t inode_of(int fd) {
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  return st.st_ino;
}

bool contains(const std::vector<std::uint64_t>& v, std::uint64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

TEST_CASE("parse_epoll_fdinfo reads fd and events and inode of every tfd line") {
  CHECK(parse_epoll_fdinfo(with_in) == std::vector{EpollEntry{3, 0x19, 0xf0a2e1}});
  CHECK(parse_epoll_fdinfo(exclusive) == std::vector{EpollEntry{3, 0x10000019, 0xf0a2e1}});
  CHECK(parse_epoll_fdinfo(disabled) == std::vector{EpollEntry{3, 0x18, 0xf0a2e1}});
  CHECK(parse_epoll_fdinfo(two) == std::vector{EpollEntry{5, 0x19, 0x3f2}, EpollEntry{12, 0x1d, 0xf0a30b}});
}

TEST_CASE("parse_epoll_fdinfo skips what is not a whole tfd line") {
  CHECK(parse_epoll_fdinfo("").empty());
  CHECK(parse_epoll_fdinfo("pos:\t0\nflags:\t02\nino:\t1039\n").empty());  // an empty epoll set
  CHECK(parse_epoll_fdinfo("tfd: 3 events: 19 data: 3 pos:0 sdev:9\n").empty());   // no ino
  CHECK(parse_epoll_fdinfo("tfd: x events: 19 data: 3 pos:0 ino:1 sdev:9\n").empty());
  CHECK(parse_epoll_fdinfo("tfd: 3 events: zz data: 3 pos:0 ino:1 sdev:9\n").empty());
  // No trailing newline; the last line still counts.
  CHECK(parse_epoll_fdinfo("tfd: 4 events: 1 data: 4 pos:0 ino:ab sdev:9") == std::vector{EpollEntry{4, 1, 0xab}});
}

TEST_CASE("epoll_input_inodes finds a socket in this process's epoll set while it has EPOLLIN") {
  Fd sock = listening_socket();
  Fd other = listening_socket();
  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  REQUIRE(ep.valid());
  const auto ino = inode_of(sock.get());
  CHECK_FALSE(contains(epoll_input_inodes(::getpid()), ino));

  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = sock.get();
  REQUIRE(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, sock.get(), &ev) == 0);
  CHECK(contains(epoll_input_inodes(::getpid()), ino));
  CHECK_FALSE(contains(epoll_input_inodes(::getpid()), inode_of(other.get())));

  ev.events = 0;  // still in the set, but not waited on
  REQUIRE(::epoll_ctl(ep.get(), EPOLL_CTL_MOD, sock.get(), &ev) == 0);
  CHECK_FALSE(contains(epoll_input_inodes(::getpid()), ino));

  CHECK(epoll_input_inodes(-1).empty());  // no such process
}
