// User text inside messages: plural() puts a count and its noun together.

#include <catch2/catch.hpp>
#include <preforkd/core/message_text.hpp>

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

using preforkd::plural;

TEST_CASE("plural says 1 worker and 2 workers", "[message_text]") {
  const std::vector<std::tuple<std::int64_t, std::string, std::string, std::string>> cases{
      {0, "worker", "", "0 workers"},
      {1, "worker", "", "1 worker"},
      {2, "worker", "", "2 workers"},
      {1024, "worker", "", "1024 workers"},
      {-1, "worker", "", "-1 workers"},
      {1, "process", "processes", "1 process"},
      {3, "process", "processes", "3 processes"},
  };
  for (const auto& [n, one, many, text] : cases) {
    INFO(n << " " << one);
    CHECK(plural(n, one, many) == text);
  }
}
