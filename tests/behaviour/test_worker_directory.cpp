// worker.directory: each worker starts in that directory (/proc/<pid>/cwd), replacements
// too; without it, workers start where the master runs.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <string>

#include "control_helpers.hpp"

using namespace bt;

namespace {

std::string cwd_of(pid_t pid) {
  std::error_code ec;
  const auto target = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
  if (!ec) return target.string();
  std::string why("cannot read: ");  // appended, not "…" + …: GCC 12's -Wrestrict misfires on that
  why += ec.message();
  return why;
}

}  // namespace

TEST_CASE("worker directory is the working directory of every worker and of a replacement", "[worker]") {
  TempDir work("preforkd-workdir");
  Daemon d(toml(
      {.address = local_address(free_port()), .count = 2, .worker = "directory = " + toml_string(work.path()) + "\n"}));
  INFO(d.log());
  const auto s = wait_workers_ready(d, 2);
  REQUIRE(s);
  const auto pids = pids_in(*s);
  CHECK(cwd_of(d.pid()) != work.path());  // the master stays where it was started
  for (const pid_t pid : pids) {
    INFO("worker " << pid);
    CHECK(cwd_of(pid) == work.path());
  }
  // A replacement after a crash starts there too.
  REQUIRE(::kill(pids[1], SIGKILL) == 0);
  std::optional<nlohmann::json> after;
  REQUIRE(wait_until([&] {
    after = wait_workers_ready(d, 2);
    return after && pids_in(*after)[1] != pids[1];
  }));
  CHECK(cwd_of(pids_in(*after)[1]) == work.path());
  stop_cleanly(d);
}
