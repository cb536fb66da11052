// [worker] pool, min_count, spare, idle_timeout (core/config_pool.hpp). Read after count:
// min_count and spare are bounded by it.

#include <preforkd/core/config_pool.hpp>

#include <fmt/format.h>

#include "config_reader.hpp"

namespace preforkd {

const char* to_string(PoolMode m) {
  switch (m) {
    case PoolMode::fixed:
      return "static";
    case PoolMode::dynamic:
      return "dynamic";
    case PoolMode::ondemand:
      return "ondemand";
  }
  return "static";
}

}  // namespace preforkd

namespace preforkd::config_detail {
namespace {

constexpr std::array<Choice<PoolMode>, 3> pool_modes{
    {{"static", PoolMode::fixed}, {"dynamic", PoolMode::dynamic}, {"ondemand", PoolMode::ondemand}}};

// A key that only an adaptive pool reads is an error with "static", not ignored.
bool applies(const Section& s, const Field& f, PoolMode mode, bool dynamic_only) {
  if (f.node == nullptr) return false;
  const bool ok = dynamic_only ? mode == PoolMode::dynamic : mode != PoolMode::fixed;
  if (!ok)
    report(s.diag(), f,
           fmt::format("applies only with pool = {}, not {}", dynamic_only ? R"("dynamic")" : R"("dynamic" or "ondemand")",
                       quoted(to_string(mode))));
  return ok;
}

}  // namespace

void read_pool(const Section& s, WorkerConfig& out) {
  PoolConfig pool;
  if (auto mode = read_choice(s.diag(), s.field("pool"), pool_modes)) pool.mode = *mode;
  pool.min_count = pool.mode == PoolMode::ondemand ? 0 : 1;
  const int lowest = pool.mode == PoolMode::ondemand ? 0 : 1;

  const Field min_field = s.field("min_count");
  if (applies(s, min_field, pool.mode, false)) {
    const auto* n = min_field.node->as_integer();
    if (n != nullptr && n->get() >= lowest && n->get() <= out.count) {
      pool.min_count = static_cast<int>(n->get());
    } else {
      report(s.diag(), min_field,
             fmt::format("must be an integer from {} to count ({}) with pool = {}, got {}", lowest, out.count,
                         quoted(to_string(pool.mode)),
                         min_field.node->is_integer() ? value_text(*min_field.node) : type_name(*min_field.node)));
    }
  }
  const Field spare_field = s.field("spare");
  if (applies(s, spare_field, pool.mode, true)) {
    const auto* n = spare_field.node->as_integer();
    if (n != nullptr && n->get() >= 0 && n->get() <= out.count) {
      pool.spare = static_cast<int>(n->get());
    } else {
      report(s.diag(), spare_field,
             fmt::format("must be an integer from 0 to count ({}), got {}", out.count,
                         spare_field.node->is_integer() ? value_text(*spare_field.node) : type_name(*spare_field.node)));
    }
  }
  if (pool.mode == PoolMode::ondemand) pool.spare = 0;
  const Field idle_field = s.field("idle_timeout");
  if (applies(s, idle_field, pool.mode, false)) {
    if (const auto idle = read_duration(s.diag(), idle_field)) {
      if (*idle >= min_idle_timeout && *idle <= max_idle_timeout) {
        pool.idle_timeout = *idle;
      } else {
        report(s.diag(), idle_field,
               fmt::format("must be a duration from {} to {}, got {}", exact_duration(min_idle_timeout),
                           exact_duration(max_idle_timeout), value_text(*idle_field.node)));
      }
    }
  }
  out.pool = pool;
}

}  // namespace preforkd::config_detail
