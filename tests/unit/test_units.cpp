// Durations and sizes as written in the config: parse_duration, parse_size, format_duration.

#include <catch2/catch.hpp>
#include <preforkd/core/units.hpp>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using preforkd::Duration;
using preforkd::exact_duration;
using preforkd::format_duration;
using preforkd::parse_duration;
using preforkd::parse_size;

TEST_CASE("parse_duration reads every unit and compound forms", "[units]") {
  const std::vector<std::pair<std::string, Duration>> good{
      {"0s", 0ms},    {"0ms", 0ms},     {"1ms", 1ms},     {"250ms", 250ms}, {"30s", 30s},
      {"5m", 5min},   {"6h", 6h},       {"1m30s", 90s},   {"1h30m", 90min}, {"1h1m1s1ms", 3'661'001ms},
      {"30s1m", 90s}, {"1.5s", 1500ms}, {"0.25s", 250ms}, {"1.5h", 90min},  {"2.000s", 2s},
      {"007s", 7s},
  };
  for (const auto& [text, expected] : good) {
    INFO(text);
    std::string why;
    const auto d = parse_duration(text, &why);
    REQUIRE(d.has_value());
    CHECK(*d == expected);
    CHECK(why.empty());
  }
}

TEST_CASE("parse_duration says why a text is not a duration", "[units]") {
  const std::vector<std::pair<std::string, std::string>> bad{
      {"", R"(expected a duration such as "30s", got "")"},
      {"30", R"(missing unit in "30"; add ms, s, m or h, e.g. "30s")"},
      {"1m30", R"(missing unit in "1m30"; add ms, s, m or h, e.g. "30s")"},
      {"30x", R"(unknown unit "x" in "30x"; use ms, s, m or h)"},
      {"30sec", R"(unknown unit "sec" in "30sec"; use ms, s, m or h)"},
      {"30S", R"(unknown unit "S" in "30S"; use ms, s, m or h)"},
      {"s", R"(expected a duration such as "30s", got "s")"},
      {"abc", R"(expected a duration such as "30s", got "abc")"},
      {"30 s", R"(expected a duration such as "30s", got "30 s")"},
      {" 30s", R"(expected a duration such as "30s", got " 30s")"},
      {"30s ", R"(expected a duration such as "30s", got "30s ")"},
      {".5s", R"(expected a duration such as "30s", got ".5s")"},
      {"1.s", R"(expected a duration such as "30s", got "1.s")"},
      {"+1s", R"(expected a duration such as "30s", got "+1s")"},
      {"-1s", R"(a duration cannot be negative, got "-1s")"},
      {"0.5ms", R"("0.5ms" is not a whole number of ms)"},
      {"1.0001s", R"("1.0001s" is not a whole number of ms)"},
      {"99999999999999999999h", R"("99999999999999999999h" is too large; a duration can be at most 720h (30 days))"},
      {"9999999999999999h", R"("9999999999999999h" is too large; a duration can be at most 720h (30 days))"},
      // Issue 13: this passed --check and overflowed WATCHDOG_USEC at spawn.
      {"9223372036854775807ms",
       R"("9223372036854775807ms" is too large; a duration can be at most 720h (30 days))"},
      {"720h1ms", R"("720h1ms" is too large; a duration can be at most 720h (30 days))"},
      {"721h", R"("721h" is too large; a duration can be at most 720h (30 days))"},
      // Control characters are escaped, so the message stays on one line.
      {"1\x1bs", R"(expected a duration such as "30s", got "1\u001Bs")"},
      {"1\ns", R"(expected a duration such as "30s", got "1\ns")"},
  };
  for (const auto& [text, expected] : bad) {
    INFO(text);
    std::string why;
    CHECK_FALSE(parse_duration(text, &why).has_value());
    CHECK(why == expected);
  }
}

TEST_CASE("parse_duration accepts up to the documented maximum", "[units]") {
  CHECK(parse_duration("720h") == Duration(720h));
  CHECK(parse_duration("719h59m59s999ms") == Duration(720h) - Duration(1ms));
  CHECK(parse_size("1024GiB") == (1ull << 40));
  // A long text is echoed cut, with its size.
  std::string why;
  CHECK_FALSE(parse_duration(std::string(100000, 'x'), &why).has_value());
  CHECK(why.size() < 400);
  CHECK(why.find("... (100000 bytes)") != std::string::npos);
}

TEST_CASE("parse_duration works without a why", "[units]") {
  CHECK(parse_duration("10s") == Duration(10s));
  CHECK_FALSE(parse_duration("10").has_value());
}

TEST_CASE("format_duration writes durations as people do", "[units]") {
  // Under 1 s in ms, under a minute in seconds with at most two decimals, above in h/m/s.
  const std::vector<std::pair<Duration, std::string>> cases{
      {0ms, "0s"},          {1ms, "1ms"},         {250ms, "250ms"},     {999ms, "999ms"},
      {1s, "1s"},           {1004ms, "1s"},       {1005ms, "1.01s"},    {1489ms, "1.49s"},
      {1500ms, "1.5s"},     {30s, "30s"},         {59'994ms, "59.99s"}, {59'995ms, "1m"},
      {90s, "1m30s"},       {90'499ms, "1m30s"},  {90'500ms, "1m31s"},  {150s, "2m30s"},
      {5min, "5m"},         {90min, "1h30m"},     {6h, "6h"},           {3'661'001ms, "1h1m1s"},
      {3'605s, "1h5s"},     {49h, "49h"},         {-1489ms, "-1.49s"},  {-250ms, "-250ms"},
  };
  for (const auto& [d, text] : cases) {
    INFO(d.count() << "ms");
    CHECK(format_duration(d) == text);
  }
}

TEST_CASE("exact_duration has the same layout and every millisecond", "[units]") {
  const std::vector<std::pair<Duration, std::string>> cases{
      {0ms, "0s"},     {250ms, "250ms"},   {1s, "1s"},       {1489ms, "1.489s"},          {1500ms, "1.5s"},
      {1010ms, "1.01s"}, {90s, "1m30s"},   {90'500ms, "1m30.5s"}, {90min, "1h30m"},       {6h, "6h"},
      {3'661'001ms, "1h1m1.001s"},          {3'600'001ms, "1h0.001s"}, {-1500ms, "-1.5s"},
  };
  for (const auto& [d, text] : cases) {
    INFO(d.count() << "ms");
    CHECK(exact_duration(d) == text);
  }
}

TEST_CASE("format_duration reads back through parse_duration to within its rounding", "[units]") {
  for (const Duration d : {1ms, 999ms, 1489ms, 59'999ms, 90'500ms, 3'600'001ms}) {
    INFO(d.count() << "ms");
    const auto back = parse_duration(format_duration(d));
    REQUIRE(back);
    CHECK(std::chrono::abs(*back - d) <= (d < 1min ? 5ms : 500ms));
  }
}

TEST_CASE("exact_duration round-trips through parse_duration", "[units]") {
  for (const Duration d : {0ms, 1ms, 999ms, 1001ms, 59'999ms, 3'600'001ms, Duration(123'456'789)}) {
    INFO(d.count() << "ms");
    CHECK(parse_duration(exact_duration(d)) == d);
  }
}

TEST_CASE("parse_size reads binary units", "[units]") {
  const std::vector<std::pair<std::string, std::uint64_t>> good{
      {"0B", 0},
      {"100B", 100},
      {"1KiB", 1024},
      {"512MiB", 512ull << 20},
      {"1GiB", 1ull << 30},
      {"1.5GiB", 3ull << 29},
      {"1GiB512MiB", 3ull << 29},
      {"64GiB", 64ull << 30},
  };
  for (const auto& [text, expected] : good) {
    INFO(text);
    CHECK(parse_size(text) == expected);
  }
}

TEST_CASE("parse_size says why a text is not a size", "[units]") {
  const std::vector<std::pair<std::string, std::string>> bad{
      {"", R"(expected a size such as "512MiB", got "")"},
      {"512", R"(missing unit in "512"; add B, KiB, MiB or GiB, e.g. "512MiB")"},
      {"512MB", R"(unknown unit "MB" in "512MB"; use B, KiB, MiB or GiB)"},
      {"512mib", R"(unknown unit "mib" in "512mib"; use B, KiB, MiB or GiB)"},
      {"MiB", R"(expected a size such as "512MiB", got "MiB")"},
      {"-1MiB", R"(a size cannot be negative, got "-1MiB")"},
      {"0.3B", R"("0.3B" is not a whole number of B)"},
      {"99999999999GiB", R"("99999999999GiB" is too large; a size can be at most 1024GiB (1 TiB))"},
      {"1025GiB", R"("1025GiB" is too large; a size can be at most 1024GiB (1 TiB))"},
  };
  for (const auto& [text, expected] : bad) {
    INFO(text);
    std::string why;
    CHECK_FALSE(parse_size(text, &why).has_value());
    CHECK(why == expected);
  }
}
