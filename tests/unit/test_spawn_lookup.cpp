// What spawn looks up before a start (spawn_lookup.cpp).

#include <preforkd/os/spawn.hpp>

#include <catch2/catch.hpp>

using namespace preforkd;

TEST_CASE("resolve_executable searches PATH for bare names only") {
  CHECK(os::resolve_executable("sh", "/nonexistent:/bin") == "/bin/sh");
  CHECK(os::resolve_executable("./app", "/bin") == "./app");
  CHECK(os::resolve_executable("no-such-program-xyz", "/bin") == "no-such-program-xyz");
}
