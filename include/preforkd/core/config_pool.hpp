#pragma once
// [worker] pool, min_count, spare, idle_timeout: how many of the `count` slots run a
// worker at a time (the adaptive pool, core/pool_plan and daemon/operations/pool).

#include <preforkd/core/units.hpp>

namespace preforkd {

// "static": every slot runs a worker (count of them, today's behaviour); "dynamic": from
// min_count up to count, grown and shrunk with the load; "ondemand": none until a
// connection arrives (min_count 0 by default).
enum class PoolMode { fixed, dynamic, ondemand };
[[nodiscard]] const char* to_string(PoolMode m);  // "static", "dynamic", "ondemand"

// Bounds of the keys, documented in docs/configuration.md and preforkd.toml(5).
inline constexpr Duration min_idle_timeout = std::chrono::milliseconds(100);
inline constexpr Duration max_idle_timeout = std::chrono::hours(24);

struct PoolConfig {
  PoolMode mode = PoolMode::fixed;
  int min_count = 1;  // resolved: dynamic defaults to 1, ondemand to 0; unused by static
  int spare = 1;      // dynamic: workers kept waiting for a connection
  Duration idle_timeout = std::chrono::seconds(10);  // a worker above min_count idle this long is retired
  bool operator==(const PoolConfig&) const = default;
};

}  // namespace preforkd
