#pragma once
// `preforkctl check`: the probe for orchestrators (Kubernetes readinessProbe, Docker
// HEALTHCHECK). One status request; ready when every slot the master keeps has a ready
// worker.

#include <preforkd/core/control_protocol.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace preforkd::ctl {

struct CheckResult {
  struct Missing {
    int slot = 0;
    std::string state;  // "backoff", "starting", ...; "missing" when the slot is not in the status
    bool operator==(const Missing&) const = default;
  };
  bool ready = false;
  int ready_count = 0;
  int total = 0;  // the slots the master keeps (master.workers_total)
  std::vector<Missing> missing;
  // "4/4 workers ready" or "2/4 workers ready: slot 1 backoff, slot 3 starting"
  std::string message;
};

// Ready when each of the slots 0 .. workers_total-1 has a worker in state "ready" with a
// pid. Slots above workers_total (being removed by a scale down) are not counted.
[[nodiscard]] CheckResult evaluate_check(const control::StatusSnapshot& status);

// {"ready":true,"workers_ready":4,"workers_total":4,"not_ready":[{"slot":1,"state":"backoff"}],"message":"..."}
[[nodiscard]] nlohmann::json check_json(const CheckResult& result);

}  // namespace preforkd::ctl
