// A taken port is refused in every mode: preforkd never joins the SO_REUSEPORT group of
// another socket (another preforkd, any process of the same user that bound it first),
// neither at start nor on a reload, and the message names the holder's pid.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "control_helpers.hpp"

using namespace bt;

namespace {

// A listening socket on 127.0.0.1:<any port> with SO_REUSEPORT (and SO_REUSEADDR when
// asked), held by this test process: exactly what preforkd used to join silently.
struct ReuseportHolder {
  int fd = -1;
  int port = 0;
  explicit ReuseportHolder(bool reuseaddr) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (reuseaddr) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) return;
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) port = ntohs(a.sin_port);
  }
  ~ReuseportHolder() { ::close(fd); }
  ReuseportHolder(const ReuseportHolder&) = delete;
  ReuseportHolder& operator=(const ReuseportHolder&) = delete;
};

std::string by_pid(pid_t pid) { return "address already in use by pid " + std::to_string(pid); }

}  // namespace

TEST_CASE("a port another process holds with SO_REUSEPORT is refused - naming that process", "[ports]") {
  for (const bool reuseaddr : {false, true}) {
    for (const std::string mode : {"reuseport", "shared"}) {
      ReuseportHolder holder(reuseaddr);
      REQUIRE(holder.port > 0);
      Daemon d(toml({.address = local_address(holder.port), .count = 2}) + "mode = \"" + mode + "\"\n");
      INFO("mode " << mode << ", holder SO_REUSEADDR " << reuseaddr << "\n" << d.log());
      CHECK(d.wait_exit() == 1);
      const std::string out = d.log();
      CHECK(out.find(std::string("'").append(local_address(holder.port)).append("'")) != std::string::npos);
      // The test process itself is the holder.
      CHECK(out.find(by_pid(::getpid())) != std::string::npos);
      CHECK(out.find("workers of") == std::string::npos);  // no worker was started
      CHECK(no_process_left(d.pid()));
    }
  }
}

TEST_CASE("a second preforkd on the same port exits 1 naming the first - which keeps all the traffic", "[ports]") {
  const int port = free_port();
  Daemon first(toml({.address = local_address(port), .count = 2}));
  const auto ready = wait_workers_ready(first, 2);
  REQUIRE(ready);
  const auto pids = pids_in(*ready);
  const std::set<pid_t> first_pids(pids.begin(), pids.end());

  Daemon second(toml({.address = local_address(port), .count = 2}));
  INFO(second.log());
  CHECK(second.wait_exit() == 1);
  CHECK(second.log().find(by_pid(first.pid()) + " (preforkd)") != std::string::npos);
  CHECK(no_process_left(second.pid()));

  // Every answer comes from the first preforkd's workers.
  for (int i = 0; i < 40; ++i) {
    const auto h = hello(port);
    REQUIRE(h);
    CHECK(first_pids.count(h->pid) == 1);
  }
  stop_cleanly(first);
}

TEST_CASE("a reload that adds a listener on a taken port is refused and changes nothing", "[ports][control]") {
  const int port = free_port();
  ReuseportHolder holder(true);
  REQUIRE(holder.port > 0);
  const std::string one = toml({.address = local_address(port), .count = 2});
  Daemon d(one);
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto pids = pids_in(*before);

  rewrite_config(d, one + "\n[[listen]]\nname = \"admin\"\naddress = " + toml_string(local_address(holder.port)) + "\n");
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 1);
  CHECK(r.err.find(local_address(holder.port)) != std::string::npos);
  CHECK(r.err.find(by_pid(::getpid())) != std::string::npos);

  const auto after = wait_workers_ready(d, 2, 0);
  REQUIRE(after);
  CHECK(pids_in(*after) == pids);
  CHECK((*after)["listeners"].size() == 1);
  stop_cleanly(d);
}

TEST_CASE("a reload that keeps its listeners and adds an overlapping one of its own still works", "[ports][control]") {
  // The master's own sockets are not "another socket": keeping 127.0.0.1:P and adding
  // 0.0.0.0:P, which overlaps it, must reload as before.
  const int port = free_port();
  const std::string one = toml({.address = local_address(port), .count = 2});
  Daemon d(one);
  REQUIRE(wait_workers_ready(d, 2, 0));
  const std::string wildcard = "0.0.0.0:" + std::to_string(port);
  rewrite_config(d, one + "\n[[listen]]\nname = \"any\"\naddress = " + toml_string(wildcard) + "\n");
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 0);
  const auto after = wait_workers_ready(d, 2, 1);
  REQUIRE(after);
  CHECK((*after)["listeners"].size() == 2);
  CHECK(hello(port));
  stop_cleanly(d);
}
