// [worker] pool, min_count, spare, idle_timeout: defaults per mode, bounds, and the exact
// message for each mistake (one row per case).

#include <preforkd/core/config.hpp>
#include <preforkd/core/config_diff.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace preforkd;

namespace {

ConfigResult parse(const std::string& rest) {
  return parse_config("[worker]\ncommand = [\"/bin/app\"]\ncount = 4\n" + rest, "app.toml", 2);
}

PoolConfig must_parse(const std::string& rest) {
  const ConfigResult r = parse(rest);
  INFO(rest);
  for (const ConfigError& e : r.errors) UNSCOPED_INFO(e.to_string());
  REQUIRE(r.config.has_value());
  return r.config->worker.pool;
}

}  // namespace

TEST_CASE("pool keys: defaults per mode", "[config][pool]") {
  struct Row {
    std::string toml;
    PoolConfig want;
  };
  const std::vector<Row> rows{
      {"", {PoolMode::fixed, 1, 1, 10s}},
      {"pool = \"static\"\n", {PoolMode::fixed, 1, 1, 10s}},
      {"pool = \"dynamic\"\n", {PoolMode::dynamic, 1, 1, 10s}},
      {"pool = \"ondemand\"\n", {PoolMode::ondemand, 0, 0, 10s}},
      {"pool = \"dynamic\"\nmin_count = 2\nspare = 0\nidle_timeout = \"500ms\"\n", {PoolMode::dynamic, 2, 0, 500ms}},
      {"pool = \"dynamic\"\nmin_count = 4\nspare = 4\n", {PoolMode::dynamic, 4, 4, 10s}},
      {"pool = \"ondemand\"\nmin_count = 1\nidle_timeout = \"24h\"\n", {PoolMode::ondemand, 1, 0, 24h}},
  };
  for (const Row& row : rows) {
    INFO(row.toml);
    CHECK(must_parse(row.toml) == row.want);
  }
}

TEST_CASE("pool keys: each mistake with its place", "[config][pool]") {
  struct Row {
    std::string toml;
    std::string message;
  };
  const std::vector<Row> rows{
      {"pool = \"dynamc\"\n",
       R"(app.toml:4:8: worker.pool: must be one of "static", "dynamic" or "ondemand", got "dynamc"; did you mean "dynamic"?)"},
      {"min_count = 2\n", R"(app.toml:4:13: worker.min_count: applies only with pool = "dynamic" or "ondemand", not "static")"},
      {"spare = 2\n", R"(app.toml:4:9: worker.spare: applies only with pool = "dynamic", not "static")"},
      {"pool = \"ondemand\"\nspare = 1\n", R"(app.toml:5:9: worker.spare: applies only with pool = "dynamic", not "ondemand")"},
      {"idle_timeout = \"5s\"\n",
       R"(app.toml:4:16: worker.idle_timeout: applies only with pool = "dynamic" or "ondemand", not "static")"},
      {"pool = \"dynamic\"\nmin_count = 0\n",
       R"(app.toml:5:13: worker.min_count: must be an integer from 1 to count (4) with pool = "dynamic", got 0)"},
      {"pool = \"dynamic\"\nmin_count = 5\n",
       R"(app.toml:5:13: worker.min_count: must be an integer from 1 to count (4) with pool = "dynamic", got 5)"},
      {"pool = \"ondemand\"\nmin_count = -1\n",
       R"(app.toml:5:13: worker.min_count: must be an integer from 0 to count (4) with pool = "ondemand", got -1)"},
      {"pool = \"dynamic\"\nmin_count = \"2\"\n",
       R"(app.toml:5:13: worker.min_count: must be an integer from 1 to count (4) with pool = "dynamic", got a string)"},
      {"pool = \"dynamic\"\nspare = 5\n", R"(app.toml:5:9: worker.spare: must be an integer from 0 to count (4), got 5)"},
      {"pool = \"dynamic\"\nidle_timeout = \"50ms\"\n",
       R"(app.toml:5:16: worker.idle_timeout: must be a duration from 100ms to 24h, got "50ms")"},
      {"pool = \"dynamic\"\nidle_timeout = 10\n",
       R"(app.toml:5:16: worker.idle_timeout: expected a duration with a unit such as "30s", got 10)"},
  };
  for (const Row& row : rows) {
    INFO(row.toml);
    const ConfigResult r = parse(row.toml);
    CHECK_FALSE(r.config.has_value());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors.front().to_string() == row.message);
  }
}

TEST_CASE("pool keys: a reload changes them without new workers", "[config][pool]") {
  const ConfigResult a = parse("");
  const ConfigResult b = parse("pool = \"dynamic\"\nmin_count = 2\n");
  REQUIRE(a.config);
  REQUIRE(b.config);
  const ConfigDiff d = diff_configs(*a.config, *b.config);
  CHECK(d.pool_changed);
  CHECK_FALSE(d.roll_workers);
  CHECK_FALSE(d.empty());
  CHECK(diff_configs(*b.config, *b.config).empty());
}
