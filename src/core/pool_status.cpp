#include <preforkd/core/pool_status.hpp>

#include <fmt/format.h>

#include <cmath>

namespace preforkd::control {

void to_json(nlohmann::json& j, const PoolStatus& v) {
  j = nlohmann::json{{"mode", v.mode},
                     {"live", v.live},
                     {"waiting", v.waiting},
                     {"min", v.min},
                     {"max", v.max},
                     {"grown_total", v.grown_total},
                     {"shrunk_total", v.shrunk_total},
                     {"last_change", nullptr}};
  if (v.last_change) {
    const PoolChangeStatus& c = *v.last_change;
    j["last_change"] = {{"unix_time", c.unix_time}, {"ago_s", c.ago_s}, {"from", c.from}, {"to", c.to},
                        {"reason", c.reason}};
  }
}

void from_json(const nlohmann::json& j, PoolStatus& v) {
  v.mode = j.value("mode", std::string("static"));
  v.live = j.value("live", 0);
  v.waiting = j.value("waiting", 0);
  v.min = j.value("min", 0);
  v.max = j.value("max", 0);
  v.grown_total = j.value("grown_total", std::uint64_t{0});
  v.shrunk_total = j.value("shrunk_total", std::uint64_t{0});
  v.last_change.reset();
  if (const auto c = j.find("last_change"); c != j.end() && c->is_object()) {
    PoolChangeStatus change;
    change.unix_time = c->value("unix_time", 0.0);
    change.ago_s = c->value("ago_s", 0.0);
    change.from = c->value("from", 0);
    change.to = c->value("to", 0);
    change.reason = c->value("reason", std::string());
    v.last_change = change;
  }
}

std::string pool_summary(const PoolStatus& p) {
  if (p.mode == "static") return "";
  std::string text = fmt::format("pool {}: {} worker{} ({} waiting), min {}, max {}", p.mode, p.live,
                                 p.live == 1 ? "" : "s", p.waiting, p.min, p.max);
  if (p.last_change) {
    const auto ago = static_cast<long long>(std::floor(p.last_change->ago_s));
    text += fmt::format("; last {} -> {}, {}s ago: {}", p.last_change->from, p.last_change->to, ago,
                        p.last_change->reason);
  }
  return text;
}

}  // namespace preforkd::control
