// preforkctl check: ready only when every slot the master keeps has a ready worker.

#include <preforkd/ctl/check_command.hpp>

#include <catch2/catch.hpp>

using namespace preforkd;
using namespace preforkd::control;

namespace {

StatusSnapshot with(int total, std::vector<std::pair<int, std::string>> workers) {
  StatusSnapshot s;
  s.master.workers_total = total;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    WorkerStatus w;
    w.slot = static_cast<int>(i);
    w.pid = workers[i].first;
    w.state = workers[i].second;
    s.workers.push_back(w);
  }
  return s;
}

}  // namespace

TEST_CASE("check: every slot ready", "[check]") {
  const auto r = ctl::evaluate_check(with(2, {{10, "ready"}, {11, "ready"}}));
  CHECK(r.ready);
  CHECK(r.message == "2/2 workers ready");
  CHECK(ctl::check_json(r) == nlohmann::json::parse(
                                  R"({"ready":true,"workers_ready":2,"workers_total":2,"not_ready":[],"message":"2/2 workers ready"})"));
}

TEST_CASE("check: says which slots are not ready", "[check]") {
  struct Case {
    StatusSnapshot status;
    bool ready;
    std::string message;
  };
  const Case cases[] = {
      {with(4, {{10, "ready"}, {-1, "backoff"}, {12, "ready"}, {13, "starting"}}), false,
       "2/4 workers ready: slot 1 backoff, slot 3 starting"},
      {with(2, {{10, "ready"}, {-1, "failed"}}), false, "1/2 workers ready: slot 1 failed"},
      // A slot being removed by a scale down is not counted.
      {with(1, {{10, "ready"}, {11, "stopping"}}), true, "1/1 worker ready"},
      // A slot the status does not list yet (scale up).
      {with(3, {{10, "ready"}, {11, "ready"}}), false, "2/3 workers ready: slot 2 missing"},
      // "ready" without a process is not ready.
      {with(1, {{-1, "ready"}}), false, "0/1 worker ready: slot 0 ready"},
      {with(0, {}), false, "0/0 workers ready: no worker slots"},
  };
  for (const auto& c : cases) {
    const auto r = ctl::evaluate_check(c.status);
    CHECK(r.ready == c.ready);
    CHECK(r.message == c.message);
  }
  const auto r = ctl::evaluate_check(cases[0].status);
  CHECK(ctl::check_json(r).at("not_ready") ==
        nlohmann::json::parse(R"([{"slot":1,"state":"backoff"},{"slot":3,"state":"starting"}])"));
}

TEST_CASE("check: an adaptive pool counts only the slots it runs a worker in", "[check]") {
  struct Case {
    std::string mode;
    StatusSnapshot status;
    bool ready;
    std::string message;
  };
  std::vector<Case> cases{
      {"dynamic", with(3, {{10, "ready"}, {-1, "stopped"}, {-1, "stopped"}}), true,
       "1/1 worker ready (pool dynamic, at most 3)"},
      {"dynamic", with(3, {{10, "ready"}, {11, "starting"}, {-1, "stopped"}}), false,
       "1/2 workers ready (pool dynamic, at most 3): slot 1 starting"},
      {"ondemand", with(2, {{-1, "stopped"}, {-1, "stopped"}}), true, "0/0 workers ready (pool ondemand, at most 2)"},
      // A static pool's stopped slot is missing, as before.
      {"static", with(2, {{10, "ready"}, {-1, "stopped"}}), false, "1/2 workers ready: slot 1 stopped"},
  };
  for (Case& c : cases) {
    c.status.pool.mode = c.mode;
    const auto r = ctl::evaluate_check(c.status);
    INFO(c.message);
    CHECK(r.ready == c.ready);
    CHECK(r.message == c.message);
  }
}
