// The control protocol's requests: the JSON form in and out, and preforkctl's command-line form.

#include <preforkd/core/control_request.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace preforkd;
using namespace preforkd::control;
using Command = Request::Command;

namespace {

Request scale_to(ScaleTarget::Kind kind, int value) {
  Request r;
  r.command = Command::scale;
  r.scale = {kind, value};
  return r;
}

Request restart_of(std::vector<int> slots) {
  Request r;
  r.command = Command::restart;
  r.restart.all = slots.empty();
  r.restart.slots = std::move(slots);
  return r;
}

Request plain(Command c) {
  Request r;
  r.command = c;
  return r;
}

}  // namespace

TEST_CASE("parse_request reads every command of the wire format", "[control_protocol]") {
  const std::vector<std::pair<std::string, Request>> good{
      {R"({"cmd":"status"})", plain(Command::status)},
      {R"({"cmd":"reload"})", plain(Command::reload)},
      {R"({"cmd":"stop"})", plain(Command::stop)},
      {R"({"cmd":"scale","count":4})", scale_to(ScaleTarget::Kind::absolute, 4)},
      {R"({"cmd":"scale","delta":-1})", scale_to(ScaleTarget::Kind::delta, -1)},
      {R"({"cmd":"scale","delta":2})", scale_to(ScaleTarget::Kind::delta, 2)},
      {R"({"cmd":"restart","slots":"all"})", restart_of({})},
      {R"({"cmd":"restart"})", restart_of({})},
      {R"({"cmd":"restart","slots":[2,0,2]})", restart_of({0, 2})},
      {R"(  {"slots":[1],"cmd":"restart"}  )", restart_of({1})},
  };
  for (const auto& [line, expected] : good) {
    INFO(line);
    auto parsed = parse_request(line);
    REQUIRE(parsed.ok());
    CHECK(*parsed == expected);
  }
}

TEST_CASE("parse_request says what is wrong", "[control_protocol]") {
  const std::vector<std::pair<std::string, std::string>> bad{
      {R"({"cmd":"explode"})", "unknown command 'explode'"},
      {R"({"cmd":42})", R"("cmd" must be a string)"},
      {R"({"command":"status"})", R"(missing "cmd" in request)"},
      {R"(["status"])", R"(a request must be a JSON object such as {"cmd":"status"})"},
      {R"({"cmd":"status","verbose":true})", "status: unknown field 'verbose'"},
      {R"({"cmd":"scale"})", R"(scale: expected "count" or "delta", exactly one of them)"},
      {R"({"cmd":"scale","count":2,"delta":1})", R"(scale: expected "count" or "delta", exactly one of them)"},
      {R"({"cmd":"scale","count":"4"})", R"(scale: "count" must be an integer, got '"4"')"},
      {R"({"cmd":"scale","count":2.5})", R"(scale: "count" must be an integer, got '2.5')"},
      {R"({"cmd":"scale","count":0})", "scale: count must be from 1 to 1024, got 0"},
      {R"({"cmd":"scale","count":99999999999})", R"(scale: "count" is out of range, got 99999999999)"},
      {R"({"cmd":"scale","delta":0})", "scale: delta must be from -1024 to +1024 and not 0, got 0"},
      {R"({"cmd":"restart","slots":[]})", R"(restart: "slots" must be "all" or a non-empty list of slot numbers)"},
      {R"({"cmd":"restart","slots":"some"})", R"(restart: "slots" must be "all" or a non-empty list of slot numbers)"},
      {R"({"cmd":"restart","slots":[-1]})", "restart: expected 'all' or slot numbers from 0 to 1023, got '-1'"},
  };
  for (const auto& [line, expected] : bad) {
    INFO(line);
    auto parsed = parse_request(line);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error() == expected);
  }
}

TEST_CASE("parse_request refuses broken JSON and long lines", "[control_protocol]") {
  auto broken = parse_request(R"({"cmd":"status")");
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().starts_with("malformed JSON: parse error at line 1, column 16"));
  CHECK_FALSE(parse_request("").ok());
  CHECK_FALSE(parse_request("\xff\xfe").ok());

  auto huge = parse_request(std::string(max_request_bytes + 1, ' '));
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.error() == "request too long: more than 65536 bytes");

  // A long unknown command is not echoed back whole.
  auto echoed = parse_request(R"({"cmd":")" + std::string(1000, 'x') + R"("})");
  REQUIRE_FALSE(echoed.ok());
  CHECK(echoed.error().size() < 100);
}

TEST_CASE("encode_request gives the wire format and parse_request reads it back", "[control_protocol]") {
  const std::vector<std::pair<Request, std::string>> cases{
      {plain(Command::status), R"({"cmd":"status"})"},
      {plain(Command::reload), R"({"cmd":"reload"})"},
      {plain(Command::stop), R"({"cmd":"stop"})"},
      {scale_to(ScaleTarget::Kind::absolute, 4), R"({"cmd":"scale","count":4})"},
      {scale_to(ScaleTarget::Kind::delta, -1), R"({"cmd":"scale","delta":-1})"},
      {restart_of({}), R"({"cmd":"restart","slots":"all"})"},
      {restart_of({0, 2}), R"({"cmd":"restart","slots":[0,2]})"},
  };
  for (const auto& [request, line] : cases) {
    INFO(line);
    CHECK(encode_request(request) == line);
    auto back = parse_request(encode_request(request));
    REQUIRE(back.ok());
    CHECK(*back == request);
  }
}

TEST_CASE("request_from_args reads preforkctl's command line", "[control_protocol]") {
  using Args = std::vector<std::string>;
  CHECK(*request_from_args("status", {}) == plain(Command::status));
  CHECK(*request_from_args("scale", Args{"4"}) == scale_to(ScaleTarget::Kind::absolute, 4));
  CHECK(*request_from_args("scale", Args{"+2"}) == scale_to(ScaleTarget::Kind::delta, 2));
  CHECK(*request_from_args("scale", Args{"-1"}) == scale_to(ScaleTarget::Kind::delta, -1));
  CHECK(*request_from_args("restart", {}) == restart_of({}));
  CHECK(*request_from_args("restart", Args{"all"}) == restart_of({}));
  CHECK(*request_from_args("restart", Args{"3", "0"}) == restart_of({0, 3}));

  const std::vector<std::pair<std::pair<std::string, Args>, std::string>> bad{
      {{"scale", {}}, "scale: expected N, +N or -N"},
      {{"scale", {"4", "5"}}, "scale: expected N, +N or -N"},
      {{"scale", {"four"}}, "scale: expected N, +N or -N, got 'four'"},
      {{"scale", {"+"}}, "scale: expected N, +N or -N, got '+'"},
      {{"scale", {"1e3"}}, "scale: expected N, +N or -N, got '1e3'"},
      {{"scale", {"0"}}, "scale: count must be from 1 to 1024, got 0"},
      {{"scale", {"-0"}}, "scale: delta must be from -1024 to +1024 and not 0, got 0"},
      {{"scale", {"2000"}}, "scale: count must be from 1 to 1024, got 2000"},
      {{"restart", {"all", "1"}}, "restart: expected 'all' or slot numbers from 0 to 1023, got 'all'"},
      {{"restart", {"x"}}, "restart: expected 'all' or slot numbers from 0 to 1023, got 'x'"},
      {{"status", {"now"}}, "status: takes no arguments, got 'now'"},
      {{"explode", {}}, "unknown command 'explode'"},
  };
  for (const auto& [input, expected] : bad) {
    INFO(input.first);
    auto parsed = request_from_args(input.first, input.second);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error() == expected);
  }
}

TEST_CASE("ScaleTarget::resolve keeps the count in range", "[control_protocol]") {
  CHECK(*ScaleTarget{ScaleTarget::Kind::absolute, 4}.resolve(2) == 4);
  CHECK(*ScaleTarget{ScaleTarget::Kind::delta, 2}.resolve(2) == 4);
  CHECK(*ScaleTarget{ScaleTarget::Kind::delta, -1}.resolve(2) == 1);
  auto to_zero = ScaleTarget{ScaleTarget::Kind::delta, -2}.resolve(2);
  REQUIRE_FALSE(to_zero.ok());
  CHECK(to_zero.error() == "scale: cannot go from 2 to 0 workers; the count must be from 1 to 1024");
  CHECK_FALSE(ScaleTarget{ScaleTarget::Kind::delta, 10}.resolve(1020).ok());
}


TEST_CASE("control characters a client sent are escaped in the error - which stays one line", "[control_protocol]") {
  // The JSON reply carries them escaped, but preforkctl prints the message to a terminal.
  auto r = parse_request(R"({"cmd":"st\u001b[31matus\nx\ty"})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error() == R"(unknown command 'st\x1b[31matus\nx\ty')");
  r = parse_request(R"({"cmd":"scale","count":1,"a\u0007b":1})");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().find("\\x07") != std::string::npos);
  CHECK(r.error().find('\x07') == std::string::npos);
}

TEST_CASE("control protocol: upgrade takes no arguments and round-trips") {
  auto parsed = parse_request(R"({"cmd":"upgrade"})");
  REQUIRE(parsed);
  CHECK(parsed->command == Request::Command::upgrade);
  CHECK(encode_request(*parsed) == R"({"cmd":"upgrade"})");
  auto from_args = request_from_args("upgrade", {});
  REQUIRE(from_args);
  CHECK(*from_args == *parsed);
  auto extra = request_from_args("upgrade", {"now"});
  REQUIRE_FALSE(extra);
  CHECK(extra.error() == "upgrade: takes no arguments, got 'now'");
  CHECK_FALSE(parse_request(R"({"cmd":"upgrade","to":"x"})"));
}

namespace {

Request logs_of(int lines, std::vector<int> slots, bool follow) {
  Request r;
  r.command = Command::logs;
  r.logs = {lines, std::move(slots), follow};
  return r;
}

}  // namespace

TEST_CASE("logs requests round-trip through JSON and the command line", "[control_protocol]") {
  for (const Request& r : {logs_of(10, {}, false), logs_of(3, {1}, false), logs_of(0, {0, 5}, true),
                           logs_of(max_log_lines, {max_workers - 1}, true)}) {
    const auto line = encode_request(r);
    INFO(line);
    auto back = parse_request(line);
    REQUIRE(back.ok());
    CHECK(*back == r);
  }
  // Defaults when absent: 10 lines, every slot, no follow.
  CHECK(*parse_request(R"({"cmd":"logs"})") == logs_of(default_log_lines, {}, false));
  CHECK(*parse_request(R"({"cmd":"logs","slots":[2,0,2]})") == logs_of(10, {0, 2}, false));

  using Args = std::vector<std::string>;
  CHECK(*request_from_args("logs", {}) == logs_of(10, {}, false));
  CHECK(*request_from_args("logs", Args{"-n", "3", "1"}) == logs_of(3, {1}, false));
  CHECK(*request_from_args("logs", Args{"-f", "2", "0"}) == logs_of(10, {0, 2}, true));
  CHECK(*request_from_args("logs", Args{"--lines=7", "--follow"}) == logs_of(7, {}, true));
  CHECK(*request_from_args("logs", Args{"-n5"}) == logs_of(5, {}, false));
}

TEST_CASE("logs requests with a bad line count or slot are refused with a reason", "[control_protocol]") {
  const std::vector<std::pair<std::string, std::string>> bad{
      {R"({"cmd":"logs","lines":-1})", "logs: the number of lines must be from 0 to 10000, got '-1'"},
      {R"({"cmd":"logs","lines":10001})", "logs: the number of lines must be from 0 to 10000, got '10001'"},
      {R"({"cmd":"logs","lines":"3"})", R"(logs: the number of lines must be from 0 to 10000, got '"3"')"},
      {R"({"cmd":"logs","slots":[1024]})", "logs: expected slot numbers from 0 to 1023, got '1024'"},
      {R"({"cmd":"logs","slots":["x"]})", R"(logs: expected slot numbers from 0 to 1023, got '"x"')"},
      {R"({"cmd":"logs","slots":3})", R"(logs: "slots" must be an array of slot numbers)"},
      {R"({"cmd":"logs","follow":1})", R"(logs: "follow" must be true or false)"},
      {R"({"cmd":"logs","tail":1})", "logs: unknown field 'tail'"},
  };
  for (const auto& [line, expected] : bad) {
    INFO(line);
    auto parsed = parse_request(line);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error() == expected);
  }
  using Args = std::vector<std::string>;
  const std::vector<std::pair<Args, std::string>> bad_args{
      {{"-n"}, "logs: -n needs a number of lines"},
      {{"-n", "many"}, "logs: the number of lines must be from 0 to 10000, got 'many'"},
      {{"-n", "99999999999"}, "logs: the number of lines must be from 0 to 10000, got '99999999999'"},
      {{"-x"}, "logs: unknown option '-x'; expected -f, -n N or slot numbers"},
      {{"one"}, "logs: expected slot numbers from 0 to 1023, got 'one'"},
  };
  for (const auto& [args, expected] : bad_args) {
    INFO(args.front());
    auto parsed = request_from_args("logs", args);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error() == expected);
  }
}

