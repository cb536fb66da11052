#pragma once
// The adaptive pool in the status document ("pool" in `preforkctl status --json`), in
// status's table and in /metrics: its mode, how many workers it runs and between which
// bounds, and its last change with the reason.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace preforkd::control {

struct PoolChangeStatus {
  double unix_time = 0;
  double ago_s = 0;
  int from = 0;
  int to = 0;
  std::string reason;  // "4 connections queued, none waiting"
  bool operator==(const PoolChangeStatus&) const = default;
};

struct PoolStatus {
  std::string mode = "static";  // worker.pool
  int live = 0;                 // slots with a worker (starting or running)
  int waiting = 0;              // of them, seen waiting for a connection (adaptive pools only)
  int min = 0;                  // min_count; count for a static pool
  int max = 0;                  // count
  std::uint64_t grown_total = 0;   // workers the pool started since preforkd started
  std::uint64_t shrunk_total = 0;  // workers it retired
  std::optional<PoolChangeStatus> last_change;
  bool operator==(const PoolStatus&) const = default;
};

void to_json(nlohmann::json& j, const PoolStatus& v);
// Every field optional: an older master sends no "pool".
void from_json(const nlohmann::json& j, PoolStatus& v);

// The line status's table prints under the master's for an adaptive pool, "" for a static
// one: "pool dynamic: 3 workers (1 waiting), min 1, max 8; last 2 -> 3, 4s ago: 4 connections queued, none waiting".
[[nodiscard]] std::string pool_summary(const PoolStatus& p);

}  // namespace preforkd::control
