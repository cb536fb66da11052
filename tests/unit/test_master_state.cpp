#include <preforkd/core/master_state.hpp>

#include <preforkd/core/address.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace preforkd;

namespace {

MasterState sample() {
  MasterState s;
  s.version = "0.1.0";
  s.config_path = "/etc/preforkd/app.toml";
  s.generation = 3;
  s.target_count = 3;
  s.uptime_s = 12.5;
  s.upgrades = 2;
  s.control_fd = 5;
  s.control_dev = 64769;
  s.control_ino = 123456789012ULL;
  s.notify_fd = 6;  // a format-1 image's shared socket, still served
  s.notify_address = "@preforkd/42/notify";
  s.listeners.push_back({"http", "127.0.0.1:8080", {7, 8, 9}, "", 0, 0});
  s.listeners.push_back({"admin", "unix:/run/a.sock", {10}, "/run/a.sock", 2049, 77});
  SlotState ready;
  ready.run.pid = 1001;
  ready.run.life.state = WorkerState::ready;
  ready.run.reached_ready = true;
  ready.run.uptime_ms = 5000;
  ready.run.watchdog_ms = 900;
  ready.run.stdout_fd = 11;
  ready.run.stderr_fd = 12;
  ready.run.notify_fd = 14;
  ready.run.notify_address = "@preforkd/42/notify/0.3";
  ready.run.notify_status = "serving";
  ready.run.cpu = 1;
  ready.had_process = true;
  ready.replaced_for = {{"reload", 2}, {"restart", 1}};
  SlotState backoff;
  backoff.run.life.state = WorkerState::backoff;
  backoff.run.life.failures = 4;
  backoff.run.timer_ms = 1600;
  backoff.restarts = 7;
  backoff.last_exit = LastExitState{ExitStatus::killed_by(11, true), 1764650000.25, ""};
  backoff.crashes = 5;
  SlotState stopping;
  stopping.run.pid = 1003;
  stopping.run.life.state = WorkerState::stopping;
  stopping.run.life.stop_intent = StopIntent::replace;
  stopping.run.life.stop_is_failure = true;
  stopping.run.timer_ms = 0;
  stopping.last_exit = LastExitState{ExitStatus::killed_by(9, false), 1764650001.0, "stalled"};
  s.slots = {ready, backoff, stopping};
  s.reply = UpgradeReply{13, "0.0.9"};
  s.blocked_signals = {10, 12};
  return s;
}

}  // namespace

TEST_CASE("master state: a state reads back as it was written") {
  const MasterState s = sample();
  auto back = decode_master_state(encode_master_state(s));
  REQUIRE(back);
  CHECK(*back == s);

  MasterState bare = sample();
  bare.reply.reset();
  bare.slots[1].last_exit.reset();
  auto back2 = decode_master_state(encode_master_state(bare));
  REQUIRE(back2);
  CHECK(*back2 == bare);
}

TEST_CASE("master state: an unknown format is refused - saying which formats are read") {
  MasterState s = sample();
  s.format = 99;
  auto back = decode_master_state(encode_master_state(s));
  REQUIRE_FALSE(back);
  CHECK(back.error() == "upgrade state: format 99 is not accepted (this preforkd reads 1,2)");
}

TEST_CASE("master state: a format-1 document reads with no notify socket per run") {
  // Written by an image whose workers all shared the master's one notify socket.
  auto j = nlohmann::json::parse(encode_master_state(sample()));
  j["format"] = 1;
  for (auto& slot : j["slots"]) {
    slot["run"].erase("notify_fd");
    slot["run"].erase("notify_address");
  }
  auto back = decode_master_state(j.dump());
  REQUIRE(back);
  CHECK(back->format == 1);
  CHECK(back->notify_fd == 6);
  for (const auto& slot : back->slots) {
    CHECK(slot.run.notify_fd == -1);
    CHECK(slot.run.notify_address.empty());
  }
  // Format 2 requires them.
  j["format"] = 2;
  auto missing = decode_master_state(j.dump());
  REQUIRE_FALSE(missing);
  CHECK(missing.error() == "upgrade state.slots[0].run.notify_fd: missing");
}

TEST_CASE("master state: malformed or incomplete documents are refused with the field named") {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"", "malformed JSON"},
      {"[1]", "upgrade state: no format version"},
      {R"({"format":1})", "upgrade state.version: missing"},
      {R"({"format":"1"})", "upgrade state: no format version"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    auto back = decode_master_state(c.text);
    REQUIRE_FALSE(back);
    CHECK_THAT(back.error(), Catch::Contains(c.error));
  }
  auto j = nlohmann::json::parse(encode_master_state(sample()));
  j["slots"][1]["run"]["state"] = "dancing";
  auto bad_state = decode_master_state(j.dump());
  REQUIRE_FALSE(bad_state);
  CHECK(bad_state.error() == "upgrade state.slots[1].run.state: unknown state 'dancing'");
  j = nlohmann::json::parse(encode_master_state(sample()));
  j["slots"][0]["run"]["pid"] = -1;  // ready without a process
  auto no_pid = decode_master_state(j.dump());
  REQUIRE_FALSE(no_pid);
  CHECK_THAT(no_pid.error(), Catch::Contains("does not fit state 'ready'"));
  j = nlohmann::json::parse(encode_master_state(sample()));
  j["target_count"] = 5;
  auto count = decode_master_state(j.dump());
  REQUIRE_FALSE(count);
  CHECK(count.error() == "upgrade state: target_count 5 but 3 slots");
}

TEST_CASE("master state: the formats a check run prints are read back") {
  CHECK(parse_state_formats(describe_state_formats()) == accepted_state_formats());
  CHECK(parse_state_formats("app.toml: ok\nstate-format: 1,2\nversion: 0.2.0\n") == std::vector<int>{1, 2});
  CHECK(parse_state_formats("app.toml: ok\n").empty());
  CHECK(parse_state_formats("state-format: x,3\n") == std::vector<int>{3});
}

namespace {

ListenConfig listen(const std::string& name, const std::string& address, ListenMode mode = ListenMode::reuseport) {
  ListenConfig l;
  l.name = name;
  l.address = *parse_address(address);
  l.mode = mode;
  return l;
}

}  // namespace

TEST_CASE("master state: what a new image checks of the state before it takes any fd") {
  // sample(): 'http' per slot (3 sockets for 3 slots), 'admin' one unix socket.
  Config config;
  config.listeners = {listen("http", "127.0.0.1:8080"), listen("admin", "unix:/run/a.sock")};
  CHECK(check_resumable(sample(), config));

  struct Row {
    std::vector<ListenConfig> listeners;
    std::string error;
  };
  const std::vector<Row> table = {
      {{listen("http", "127.0.0.1:8080")}, "listeners: the config has 1 and the running master had 2"},
      {{listen("web", "127.0.0.1:8080"), listen("admin", "unix:/run/a.sock")},
       "listener 'web': the running master had 'http' at '127.0.0.1:8080' in its place"},
      {{listen("http", "127.0.0.1:8081"), listen("admin", "unix:/run/a.sock")},
       "listener 'http': the running master had 'http' at '127.0.0.1:8080' in its place"},
      // One shared socket where the running master had one per slot.
      {{listen("http", "127.0.0.1:8080", ListenMode::shared), listen("admin", "unix:/run/a.sock")},
       "listener 'http': expected 1 sockets, got 3"},
  };
  for (const auto& row : table) {
    config.listeners = row.listeners;
    const auto fits = check_resumable(sample(), config);
    REQUIRE_FALSE(fits);
    CHECK(fits.error() == row.error);
  }

  config.listeners = {listen("http", "127.0.0.1:8080"), listen("admin", "unix:/run/a.sock")};
  MasterState fewer = sample();
  fewer.listeners[0].fds.pop_back();
  CHECK(check_resumable(fewer, config).error() == "listener 'http': expected 3 sockets, got 2");
  MasterState none = sample();
  none.target_count = 0;
  CHECK(check_resumable(none, config).error() == "target_count: 0 is not a worker count from 1 to 1024");
}
