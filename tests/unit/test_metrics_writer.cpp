// The text exposition format itself: how a sample value is written.

#include <preforkd/core/metrics_text.hpp>

#include <catch2/catch.hpp>

#include <limits>
#include <utility>

using namespace preforkd;

TEST_CASE("metrics: values as Prometheus parses them", "[metrics]") {
  const std::pair<double, const char*> cases[] = {
      {0, "0"},           {-1, "-1"},       {4122, "4122"},   {1.25, "1.25"},
      {0.001, "0.001"},   {1e15, "1000000000000000"},        {12897485, "12897485"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},     {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
  };
  for (const auto& [value, text] : cases) {
    INFO(value);
    CHECK(metrics::format_value(value) == text);
  }
}
