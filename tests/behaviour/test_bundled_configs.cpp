// The configs the project ships (the demo and the example) are valid.

#include "harness.hpp"

#include <catch2/catch.hpp>

using namespace bt;

TEST_CASE("the bundled demo and example configs pass --check") {
  for (const std::string name : {"demo.toml", "example.toml"}) {
    const std::string path = std::string(SOURCE_DIR) + "/config/" + name;
    const auto [code, out] = run_preforkd({"--config", path, "--check"});
    INFO(out);
    CHECK(code == 0);
    CHECK(out == path + ": ok\n");
  }
}
