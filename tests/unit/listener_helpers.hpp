#pragma once
// What the ListenerSet unit tests share (test_listener_set.cpp, test_listener_socket.cpp,
// test_listener_steering.cpp, test_listener_inherited.cpp): listener configs, sockets on
// the loopback interface, connecting to a set and counting where the connections went.

#include <preforkd/os/listener_set.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "../support/test_support.hpp"

namespace listener_test {

using preforkd::AddressFamily;
using preforkd::ListenConfig;
using preforkd::ListenMode;
using preforkd::os::Fd;
using preforkd::os::ListenerSet;

inline constexpr int kConnections = 20;

inline ListenConfig tcp4(const std::string& name, std::uint16_t port, ListenMode mode = ListenMode::reuseport) {
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

inline ListenConfig unix_listener(const std::string& name, const std::string& path) {
  ListenConfig c;
  c.name = name;
  c.address.family = AddressFamily::unix_path;
  c.address.path = path;
  c.address.text = "unix:" + path;
  return c;
}

inline std::uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
  return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                  : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

// A port nobody used a moment ago (port 0 would give every group member a port of its own).
inline std::uint16_t free_port() { return static_cast<std::uint16_t>(testsupport::free_port()); }

// Opens `slots` reuseport sockets on a free port, retrying if another process takes it first.
inline ListenerSet open_tcp(int slots, ListenMode mode = ListenMode::reuseport) {
  for (int attempt = 0;; ++attempt) {
    auto set = ListenerSet::open({tcp4("http", free_port(), mode)}, slots);
    if (set || attempt == 5) {
      INFO((set ? "" : set.error()));
      REQUIRE(set.ok());
      return std::move(*set);
    }
  }
}

inline Fd listening_socket(int family, const sockaddr* sa, socklen_t len) {
  Fd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  REQUIRE(::bind(fd.get(), sa, len) == 0);
  REQUIRE(::listen(fd.get(), 16) == 0);
  return fd;
}

inline std::vector<Fd> connect_many(std::uint16_t port, int count) {
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

// Accepts from every socket until `expected` connections arrived or 10 s passed (generous:
// a loaded machine under ASan); the count per socket. (The final ACK may still be in
// flight when connect() returns.)
inline std::vector<int> accept_all(const std::vector<int>& fds, int expected) {
  std::vector<int> counts(fds.size(), 0);
  int total = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
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

inline std::vector<int> slot_fds(const ListenerSet& set) {
  std::vector<int> fds;
  for (int slot = 0; slot < set.slot_count(); ++slot) fds.push_back(set.fds_for_slot(slot).at(0));
  return fds;
}

inline std::vector<int> connect_and_count(const ListenerSet& set, int count) {
  const auto fds = slot_fds(set);
  auto clients = connect_many(local_port(fds.at(0)), count);
  return accept_all(fds, count);
}

inline int open_fd_count() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  while (::readdir(dir) != nullptr) ++n;
  ::closedir(dir);
  return n;
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

inline bool is_socket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

inline sockaddr_un unix_address(const std::string& path) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  path.copy(un.sun_path, sizeof un.sun_path - 1);
  return un;
}

}  // namespace listener_test
