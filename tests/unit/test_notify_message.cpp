// The sd_notify datagrams workers send.

#include <preforkd/core/notify_message.hpp>

#include <catch2/catch.hpp>

using namespace preforkd;

TEST_CASE("notify messages") {
  auto m = parse_notify_message("READY=1\nSTATUS=serving 10 req/s\n");
  REQUIRE(m);
  CHECK(m->ready);
  CHECK_FALSE(m->watchdog);
  CHECK(m->status == "serving 10 req/s");

  m = parse_notify_message("WATCHDOG=1");
  REQUIRE(m);
  CHECK(m->watchdog);
  CHECK_FALSE(m->ready);

  m = parse_notify_message("STOPPING=1\nMAINPID=4\nX_UNKNOWN=yes");
  REQUIRE(m);
  CHECK(m->stopping);

  m = parse_notify_message("READY=0");
  REQUIRE(m);
  CHECK_FALSE(m->ready);

  CHECK_FALSE(parse_notify_message(""));
  CHECK_FALSE(parse_notify_message("garbage without assignments"));
  CHECK_FALSE(parse_notify_message("\n\n=1\n"));
}
