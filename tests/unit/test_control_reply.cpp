// The control socket's replies and the log lines a logs reply carries.

#include <preforkd/core/control_reply.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace preforkd;
using namespace preforkd::control;
using nlohmann::json;

TEST_CASE("replies: make_ok and make_error and parse_reply", "[control_reply]") {
  CHECK(make_ok().dump() == R"({"ok":true})");
  CHECK(make_ok({{"message", "reloaded"}, {"ok", false}}).dump() == R"({"message":"reloaded","ok":true})");
  CHECK(make_error("nope").dump() == R"({"error":"nope","ok":false})");

  auto ok = parse_reply(R"({"ok":true,"message":"scaled to 4"})");
  REQUIRE(ok.ok());
  CHECK(ok->ok);
  CHECK(ok->body["message"] == "scaled to 4");
  auto refused = parse_reply(R"({"ok":false,"error":"app.toml:3:1: worker.count: bad"})");
  REQUIRE(refused.ok());
  CHECK_FALSE(refused->ok);
  CHECK(refused->error == "app.toml:3:1: worker.count: bad");

  CHECK_FALSE(parse_reply("HTTP/1.1 400 Bad Request").ok());
  CHECK_FALSE(parse_reply(R"({"status":"fine"})").ok());
  CHECK_FALSE(parse_reply(R"([true])").ok());
}

TEST_CASE("a log line round-trips through its JSON form", "[control_reply]") {
  OutputLine line;
  line.unix_time = 1765000000.25;
  line.slot = 3;
  line.pid = 4242;
  line.stream = OutputStream::err;
  line.text = "hello \"world\"";
  const json j = log_line_json(line);
  CHECK(j.at("stream") == "stderr");
  auto back = parse_log_line(j);
  REQUIRE(back.ok());
  CHECK(*back == line);
  CHECK_FALSE(parse_log_line(json{{"slot", 1}}).ok());
}
