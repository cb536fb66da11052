// Unix listeners: workers serve on a unix:/path socket; a stale socket file left by a
// killed master is replaced, a live one is not taken over, and a clean stop removes it.

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>

#include "harness.hpp"

using namespace bt;

namespace {

bool is_socket_file(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

std::optional<Hello> hello_unix(const std::string& path) {
  auto r = http_get_unix(path, "/", 5s);
  if (!r || r->status != 200) return std::nullopt;
  return parse_hello(r->body);
}

}  // namespace

TEST_CASE("workers answer on a unix socket and a clean stop removes it") {
  TempDir dir;
  const std::string path = dir.file("s.sock");
  Daemon d(toml({.address = "unix:" + path, .count = 2}));
  std::optional<Hello> h;
  REQUIRE(wait_until([&] { return (h = hello_unix(path)).has_value(); }));
  CHECK(h->pid == worker_pid(d.pid(), h->slot));
  CHECK(is_socket_file(path));

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
  CHECK_FALSE(is_socket_file(path));
}

TEST_CASE("a stale unix socket file left by a killed master is replaced on the next start") {
  TempDir dir;
  const std::string path = dir.file("s.sock");
  const std::string config = toml({.address = "unix:" + path, .count = 2});
  {
    Daemon first(config);
    REQUIRE(wait_until([&] { return hello_unix(path).has_value(); }));
    first.signal(SIGKILL);
    REQUIRE(first.wait_exit() == 128 + SIGKILL);
    REQUIRE(no_process_left(first.pid()));
  }
  // Left behind, and nobody listens on it.
  REQUIRE(is_socket_file(path));
  REQUIRE_FALSE(hello_unix(path));

  Daemon second(config);
  std::optional<Hello> h;
  REQUIRE(wait_until([&] { return (h = hello_unix(path)).has_value(); }));
  CHECK(h->pid == worker_pid(second.pid(), h->slot));
  second.signal(SIGTERM);
  CHECK(second.wait_exit() == 0);
  CHECK(no_process_left(second.pid()));
}

TEST_CASE("a unix socket a live preforkd serves on is not taken over") {
  TempDir dir;
  const std::string path = dir.file("s.sock");
  const std::string config = toml({.address = "unix:" + path, .count = 1});
  Daemon first(config);
  REQUIRE(wait_until([&] { return hello_unix(path).has_value(); }));

  Daemon second(config);
  CHECK(second.wait_exit() == 1);
  INFO(second.log());
  CHECK(second.log().find("unix:" + path) != std::string::npos);
  CHECK(no_process_left(second.pid()));
  const auto h = hello_unix(path);  // the first one still serves
  REQUIRE(h);
  CHECK(h->pid == worker_pid(first.pid(), 0));

  first.signal(SIGTERM);
  CHECK(first.wait_exit() == 0);
  CHECK(no_process_left(first.pid()));
}

TEST_CASE("a unix listener path that is not a socket is refused and left alone") {
  TempDir dir;
  const std::string path = dir.file("s.sock");
  dir.write("s.sock", "precious\n");
  Daemon d(toml({.address = "unix:" + path, .count = 1}));
  CHECK(d.wait_exit() == 1);
  INFO(d.log());
  CHECK(d.log().find("unix:" + path) != std::string::npos);
  CHECK(no_process_left(d.pid()));
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  CHECK(content == "precious");
}
