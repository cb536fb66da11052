// The control protocol: requests in and out, replies, and the status document's contract.

#include <preforkd/core/control_protocol.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace preforkd;
using namespace preforkd::control;
using nlohmann::json;
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

std::set<std::string> keys(const json& j) {
  std::set<std::string> out;
  for (const auto& [key, value] : j.items()) out.insert(key);
  return out;
}

StatusSnapshot sample_status() {
  StatusSnapshot s;
  s.master = {4121, "0.1.0", "/etc/preforkd/app.toml", 2, 11520.5, 1, 2, "serving"};
  WorkerStatus ready{0, 4122, "ready", 2, 0, 11520.0, 12'900'000, 0.5, std::nullopt, "accepting"};
  WorkerStatus backoff{1, -1, "backoff", 2, 5, 0, 0, 0, LastExitInfo{"exited on signal 9", -1, 9, 1.7e9, 2.5}, ""};
  backoff.crashes = 4;
  backoff.replacements = 1;
  backoff.replaced_for = {{"reload", 1}};
  s.workers = {ready, backoff};
  s.listeners = {{"http", "127.0.0.1:8080", "reuseport", {0, -1}}, {"admin", "unix:/run/a.sock", "shared", {3}}};
  return s;
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

TEST_CASE("replies: make_ok and make_error and parse_reply", "[control_protocol]") {
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

TEST_CASE("the status reply has the contract's field names", "[control_protocol]") {
  const json reply = make_status_reply(sample_status());
  CHECK(keys(reply) == std::set<std::string>{"ok", "master", "workers", "listeners", "memory", "pool"});
  CHECK(keys(reply["pool"]) == std::set<std::string>{"mode", "live", "waiting", "min", "max", "grown_total",
                                                      "shrunk_total", "last_change"});
  CHECK(keys(reply["memory"]) == std::set<std::string>{"workers", "rss_bytes", "pss_bytes", "uss_bytes", "shared_bytes",
                                                        "master_rss_bytes", "master_pss_bytes", "master_uss_bytes"});
  CHECK(reply["ok"] == true);
  CHECK(keys(reply["master"]) == std::set<std::string>{"pid", "version", "config", "generation", "uptime_s",
                                                        "workers_ready", "workers_total", "notify_status",
                                                        "rss_bytes", "reloads", "reload_failures", "rollbacks", "start_unix_time"});
  REQUIRE(reply["workers"].size() == 2);
  CHECK(keys(reply["workers"][0]) ==
        std::set<std::string>{"slot", "pid", "state", "generation", "restarts", "uptime_s", "rss_bytes",
                              "cpu_percent", "last_exit", "notify_status", "activity", "queued", "pss_bytes",
                              "uss_bytes", "processes", "cgroup", "crashes", "replacements", "replaced_for",
                              "cpus", "cpu_s", "recycle_in_s", "recycled", "start_unix_time"});
  CHECK(reply["workers"][0]["last_exit"].is_null());
  CHECK(keys(reply["workers"][1]["last_exit"]) ==
        std::set<std::string>{"text", "code", "signal", "unix_time", "ago_s", "cause"});
  CHECK(reply["workers"][1]["pid"] == -1);
  CHECK(keys(reply["listeners"][0]) == std::set<std::string>{"name", "address", "mode", "balance", "balanced_by",
                                                             "ebpf_error", "queue_depth",
                                                             "defer_accept_s", "fastopen", "refusing",
                                                             "refused_total", "keep_alive", "keep_alive_time_s",
                                                             "keep_alive_interval_s", "keep_alive_probes",
                                                             "receive_buffer", "send_buffer", "no_delay",
                                                             "free_bind", "bind_ipv6_only", "bind_to_device", "non_blocking"});
  CHECK(reply["listeners"][0]["queue_depth"] == json::array({0, -1}));
  CHECK(reply["master"]["uptime_s"].is_number());
  CHECK(reply["workers"][0]["rss_bytes"] == 12'900'000);
  // Crashes (unplanned) and planned replacements are counted apart; restarts counts both.
  CHECK(reply["workers"][1]["crashes"] == 4);
  CHECK(reply["workers"][1]["replacements"] == 1);
  CHECK(reply["workers"][1]["replaced_for"] == json{{"reload", 1}});
  CHECK(reply["workers"][0]["replaced_for"] == json::object());
}

TEST_CASE("the status document reads back what was written", "[control_protocol]") {
  StatusSnapshot original = sample_status();
  original.master.rss_bytes = 6'553'600;
  original.master.reloads = 3;
  original.master.reload_failures = 1;
  original.master.rollbacks = 1;
  original.workers[0].cpu_s = 12.5;
  original.listeners[0].keep_alive = true;
  original.listeners[0].keep_alive_time_s = 60;
  original.listeners[0].keep_alive_interval_s = 10;
  original.listeners[0].keep_alive_probes = 5;
  original.listeners[0].receive_buffer = 262144;
  original.listeners[0].send_buffer = 65536;
  original.listeners[0].no_delay = true;
  original.listeners[0].free_bind = true;
  original.listeners[0].bind_ipv6_only = "both";
  original.listeners[0].bind_to_device = "lo";
  const std::string line = make_status_reply(original).dump();
  auto reply = parse_reply(line);
  REQUIRE(reply.ok());
  auto back = parse_status(reply->body);
  REQUIRE(back.ok());
  CHECK(*back == original);

  // Only the contract's fields are required.
  auto minimal = parse_status(json::parse(R"({"master":{"pid":1,"version":"v","config":"c","generation":0,
      "uptime_s":1},"workers":[{"slot":0,"pid":2,"state":"ready","restarts":0,"uptime_s":1,"rss_bytes":0,
      "cpu_percent":0,"last_exit":null}],"listeners":[{"name":"l","address":"a","mode":"shared"}]})"));
  REQUIRE(minimal.ok());
  CHECK(minimal->workers.front().state == "ready");
  // Without "memory" (an older master), the summary is added up from the workers.
  CHECK(minimal->memory.workers == 1);

  auto missing = parse_status(json::parse(R"({"ok":true,"master":{"pid":1},"workers":[],"listeners":[]})"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().starts_with("malformed status: "));
  auto refused = parse_status(make_error("shutting down"));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error() == "shutting down");
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

TEST_CASE("a log line round-trips through its JSON form", "[control_protocol]") {
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

TEST_CASE("the pool object goes through status and back", "[control_protocol]") {
  StatusSnapshot s = sample_status();
  s.pool = {"dynamic", 3, 1, 2, 8, 5, 2, PoolChangeStatus{1.7e9, 4.5, 2, 3, "4 connections queued, none waiting"}};
  auto back = parse_status(make_status_reply(s));
  REQUIRE(back.ok());
  CHECK(back->pool == s.pool);
  CHECK(pool_summary(s.pool) ==
        "pool dynamic: 3 workers (1 waiting), min 2, max 8; last 2 -> 3, 4s ago: 4 connections queued, none waiting");
  s.pool = PoolStatus{};
  CHECK(pool_summary(s.pool).empty());
  json old = make_status_reply(s);
  old.erase("pool");  // an older master
  auto parsed = parse_status(old);
  REQUIRE(parsed.ok());
  CHECK(parsed->pool.mode == "static");
}
