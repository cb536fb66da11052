// Start-up failures: a bad config exits 78 naming file:line:col and the key; --check
// validates only; a listening address that is taken stops start-up with a clear message.
// None of these leaves a process behind.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>

#include "harness.hpp"

using namespace bt;

namespace {

std::string lower(std::string s) {
  std::ranges::transform(s, s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string worker_section(const std::string& count_line) {
  return "[worker]\ncommand = [" + toml_string(demo_bin()) + "]\n" + count_line + "\n";
}

}  // namespace

TEST_CASE("a bad config exits 78 with file:line:col and the key") {
  // count is on line 3, its value at column 9.
  Daemon d(worker_section("count = 0"));
  CHECK(d.wait_exit() == 78);
  const std::string out = d.log();
  INFO(out);
  // After the version banner, as a logged error (tests/behaviour/test_messages.cpp checks the banner).
  CHECK(out.find(" error " + d.config_path() + ":3:9: worker.count: ") != std::string::npos);
  CHECK(out.find("got 0") != std::string::npos);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("an unknown key is an error that suggests the closest known key") {
  Daemon d(worker_section("coutn = 2"), {"--check"});
  CHECK(d.wait_exit() == 78);
  const std::string out = d.log();
  INFO(out);
  CHECK(out.rfind(d.config_path() + ":3:1: worker.coutn: ", 0) == 0);
  CHECK(out.find("did you mean \"count\"") != std::string::npos);
}

TEST_CASE("preforkd --check prints one line per error") {
  Daemon d(worker_section("count = 0\nready = \"soon\""), {"--check"});
  CHECK(d.wait_exit() == 78);
  const std::string out = d.log();
  INFO(out);
  CHECK(std::ranges::count(out, '\n') == 2);
  CHECK(out.find(d.config_path() + ":3:9: worker.count: ") != std::string::npos);
  CHECK(out.find(d.config_path() + ":4:9: worker.ready: ") != std::string::npos);
}

TEST_CASE("preforkd --check on a good config prints FILE: ok and starts nothing") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}), {"--check"});
  CHECK(d.wait_exit() == 0);
  CHECK(d.log() == d.config_path() + ": ok\n");
  CHECK(no_process_left(d.pid()));
  CHECK_FALSE(hello(port, 2s));  // nothing listens
}

TEST_CASE("a taken port stops start-up with a clear message") {
  // A plain listener, without SO_REUSEPORT, so that preforkd cannot join it.
  const int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(holder >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(holder, 16) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  const int port = ntohs(a.sin_port);

  Daemon d(toml({.address = local_address(port), .count = 2}));
  CHECK(d.wait_exit() == 1);
  const std::string out = d.log();
  INFO(out);
  // Appended, not "'" + std::string&&: GCC 12 at -O3 reports a false -Werror=restrict.
  const std::string quoted_address = std::string("'").append(local_address(port)).append("'");
  CHECK(out.find(quoted_address) != std::string::npos);
  CHECK(lower(out).find("address already in use") != std::string::npos);
  CHECK(out.find("workers of") == std::string::npos);  // no worker was started
  CHECK(no_process_left(d.pid()));
  ::close(holder);
}
