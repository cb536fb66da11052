// The status document's contract: its field names, and that it reads back what was written.

#include <preforkd/core/control_reply.hpp>
#include <preforkd/core/status_snapshot.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace preforkd;
using namespace preforkd::control;
using nlohmann::json;

namespace {

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

TEST_CASE("the status reply has the contract's field names", "[status_snapshot]") {
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

TEST_CASE("the status document reads back what was written", "[status_snapshot]") {
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

TEST_CASE("the pool object goes through status and back", "[status_snapshot]") {
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
