// Memory truth: per worker, the RSS, PSS and USS (private) of its whole tree, from
// smaps_rollup, and a summary an operator can act on.

#include <catch2/catch.hpp>

#include "control_helpers.hpp"
#include "tree_helpers.hpp"

using namespace bt;

namespace {

constexpr std::uint64_t mib = 1024 * 1024;

}  // namespace

TEST_CASE("memory: a worker that touches N MiB shows USS of at least N and the summary adds it up") {
  for (const std::string mode : {"auto", "off"}) {
    INFO("worker_cgroups = " << mode);
    const int port = free_port();
    // The child is forked before the allocation: the worker's 48 MiB is its own.
    Daemon d(tree_config(port, "TREE_ALLOC_MIB = \"48\", TREE_SETSID_CHILD = \"1\"", mode, 2));
    REQUIRE(wait_workers_ready(d, 2));
    std::optional<nlohmann::json> status;
    CHECK(wait_until([&] {
      status = status_of(d);
      if (!status) return false;
      for (const auto& w : (*status)["workers"])
        if (w.value("uss_bytes", std::uint64_t{0}) < 48 * mib || w.value("processes", 0) != 2) return false;
      return true;
    }));
    REQUIRE(status);
    INFO(status->dump());
    std::uint64_t uss = 0, pss = 0;
    for (const auto& w : (*status)["workers"]) {
      CHECK(w.value("pss_bytes", std::uint64_t{0}) >= w.value("uss_bytes", std::uint64_t{0}));
      CHECK(w.value("rss_bytes", std::uint64_t{0}) >= w.value("pss_bytes", std::uint64_t{0}));
      uss += w.value("uss_bytes", std::uint64_t{0});
      pss += w.value("pss_bytes", std::uint64_t{0});
    }
    const auto& m = (*status)["memory"];
    CHECK(m.value("workers", 0) == 2);
    CHECK(m.value("uss_bytes", std::uint64_t{0}) == uss);
    CHECK(m.value("pss_bytes", std::uint64_t{0}) == pss);
    CHECK(m.value("shared_bytes", std::uint64_t{0}) == pss - uss);
    CHECK(m.value("master_uss_bytes", std::uint64_t{0}) > 0);

    const CtlResult table = ctl(d, {"status"});
    CHECK(table.exit_code == 0);
    CHECK(table.out.find("2 workers: ") != std::string::npos);
    CHECK(table.out.find(" private + ") != std::string::npos);
    CHECK(table.out.find("PSS") != std::string::npos);
    stop_cleanly(d);
  }
}
