// What a reload must do, from the difference of two configs.

#include <preforkd/core/config_diff.hpp>

#include <catch2/catch.hpp>

using namespace preforkd;

namespace {

Config parse(const std::string& worker_extra, const std::string& listen = "address = \"127.0.0.1:8080\"") {
  auto r = parse_config("[worker]\ncommand = [\"/bin/app\"]\n" + worker_extra + "\n[[listen]]\n" + listen + "\n",
                        "app.toml", 4);
  INFO((r.errors.empty() ? "" : r.errors.front().to_string()));
  REQUIRE(r.config);
  return *r.config;
}

}  // namespace

TEST_CASE("an identical config changes nothing") {
  CHECK(diff_configs(parse("count = 2"), parse("count = 2")).empty());
}

TEST_CASE("what the workers run or see rolls them") {
  const Config base = parse("count = 2");
  auto d = diff_configs(base, parse("count = 2\nenv = { A = \"1\" }"));
  CHECK(d.roll_workers);
  CHECK(d.roll_reasons == std::vector<std::string>{"worker.env"});
  CHECK_FALSE(d.count_changed);

  Config other_command = base;
  other_command.worker.command = {"/bin/other"};
  CHECK(diff_configs(base, other_command).roll_reasons == std::vector<std::string>{"worker.command"});

  d = diff_configs(base, parse("count = 2", "address = \"127.0.0.1:8081\""));
  CHECK(d.listeners_changed);
  CHECK(d.roll_workers);

  d = diff_configs(base, parse("count = 2\nwatchdog = \"5s\""));
  CHECK(d.roll_reasons == std::vector<std::string>{"worker.watchdog"});
}

TEST_CASE("switching ready to or from accepting rolls the workers - other kinds change the policy") {
  const Config alive = parse("count = 2");  // ready = "1s"
  for (const char* ready : {"ready = \"accepting\"", "ready = \"notify\""})
    CHECK(diff_configs(alive, parse(std::string("count = 2\n") + ready)).roll_reasons ==
          std::vector<std::string>{"worker.ready"});
  CHECK(diff_configs(parse("count = 2\nready = \"accepting\""), parse("count = 2\nready = \"notify\"")).roll_reasons ==
        std::vector<std::string>{"worker.ready"});
  auto d = diff_configs(alive, parse("count = 2\nready = \"immediate\""));
  CHECK_FALSE(d.roll_workers);
  CHECK(d.policy_changed);
}

TEST_CASE("a count change is a scale - not a roll") {
  auto d = diff_configs(parse("count = 2"), parse("count = 5"));
  CHECK(d.count_changed);
  CHECK_FALSE(d.roll_workers);
}

TEST_CASE("policy changes apply without new workers") {
  auto d = diff_configs(parse("count = 2"), parse("count = 2\nstop_timeout = \"5s\"\nbackoff_max = \"1m\""));
  CHECK(d.policy_changed);
  CHECK_FALSE(d.roll_workers);
}

TEST_CASE("the control socket only changes with a restart") {
  Config a = parse("count = 2");
  Config b = a;
  b.daemon.control_socket = "/run/other.sock";
  auto d = diff_configs(a, b);
  CHECK(d.needs_restart == std::vector<std::string>{"preforkd.control_socket"});
  CHECK_FALSE(d.roll_workers);
}

TEST_CASE("the metrics address only changes with a restart", "[metrics]") {
  Config a = parse("count = 2");
  Config b = a;
  b.daemon.metrics_listen = "127.0.0.1:9464";
  auto d = diff_configs(a, b);
  CHECK(d.needs_restart == std::vector<std::string>{"preforkd.metrics_listen"});
  CHECK_FALSE(d.roll_workers);
}
