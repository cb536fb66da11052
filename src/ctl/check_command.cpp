#include <preforkd/ctl/check_command.hpp>
#include <preforkd/core/message_text.hpp>

#include <fmt/format.h>

namespace preforkd::ctl {

CheckResult evaluate_check(const control::StatusSnapshot& status) {
  CheckResult r;
  const int slots = status.master.workers_total;
  // An adaptive pool (worker.pool) keeps slots without a worker on purpose: only the slots
  // it runs a worker in count, and an ondemand pool at zero is ready for the next connection.
  const bool adaptive = status.pool.mode != "static";
  for (int slot = 0; slot < slots; ++slot) {
    const auto index = static_cast<std::size_t>(slot);
    const control::WorkerStatus* w = index < status.workers.size() ? &status.workers[index] : nullptr;
    if (w != nullptr && w->slot != slot) w = nullptr;  // the list is by slot; anything else is not trusted
    if (adaptive && w != nullptr && w->state == "stopped" && w->pid < 0) continue;
    ++r.total;
    if (w != nullptr && w->state == "ready" && w->pid > 0) {
      ++r.ready_count;
    } else {
      r.missing.push_back({slot, w == nullptr ? "missing" : w->state});
    }
  }
  r.ready = (r.total > 0 || (adaptive && slots > 0)) && r.missing.empty();
  r.message = fmt::format("{}/{} ready", r.ready_count, plural(r.total, "worker"));
  if (adaptive) r.message += fmt::format(" (pool {}, at most {})", status.pool.mode, slots);
  if (slots == 0) r.message += ": no worker slots";
  for (std::size_t i = 0; i < r.missing.size(); ++i)
    r.message += fmt::format("{}slot {} {}", i == 0 ? ": " : ", ", r.missing[i].slot, r.missing[i].state);
  return r;
}

nlohmann::json check_json(const CheckResult& result) {
  nlohmann::json missing = nlohmann::json::array();
  for (const auto& m : result.missing) missing.push_back({{"slot", m.slot}, {"state", m.state}});
  return {{"ready", result.ready},
          {"workers_ready", result.ready_count},
          {"workers_total", result.total},
          {"not_ready", std::move(missing)},
          {"message", result.message}};
}

}  // namespace preforkd::ctl
