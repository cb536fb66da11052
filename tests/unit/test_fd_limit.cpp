// File descriptors at start-up: what a config needs, and the message when it cannot fit.

#include <preforkd/core/limits.hpp>
#include <preforkd/os/fd_limit.hpp>

#include <sys/resource.h>

#include <catch2/catch.hpp>

using namespace preforkd;

namespace {

Config with_listeners(int reuseport, int shared) {
  Config c;
  for (int i = 0; i < reuseport; ++i) c.listeners.push_back({.name = "r", .address = {}, .mode = ListenMode::reuseport});
  for (int i = 0; i < shared; ++i) c.listeners.push_back({.name = "s", .address = {}, .mode = ListenMode::shared});
  return c;
}

}  // namespace

TEST_CASE("fds_needed counts sockets per slot and pipes per worker and a margin", "[fd_limit]") {
  Config c = with_listeners(1, 0);
  // 32 workers + 1 surge slot: 33 sockets, 33 * 3 pipes, the margin.
  CHECK(os::fds_needed(c, 32) == 33 + 33 * 3 + limits::fd_margin);
  c = with_listeners(2, 1);
  CHECK(os::fds_needed(c, 4) == 2 * 5 + 1 + 5 * 3 + limits::fd_margin);
  c.daemon.worker_output = WorkerOutput::inherit;
  CHECK(os::fds_needed(c, 4) == 2 * 5 + 1 + 5 + limits::fd_margin);
}

TEST_CASE("fds_needed counts a notify socket per worker run when workers speak sd_notify", "[fd_limit]") {
  Config c = with_listeners(1, 0);
  c.worker.ready = {ReadyKind::notify, Duration::zero()};
  // 32 workers + 1 surge slot: 33 sockets, 33 * (3 pipes + 1 notify socket), the margin.
  CHECK(os::fds_needed(c, 32) == 33 + 33 * 4 + limits::fd_margin);
  c.worker.ready = {ReadyKind::immediate, Duration::zero()};
  c.worker.watchdog = std::chrono::seconds(5);
  CHECK(os::fds_needed(c, 32) == 33 + 33 * 4 + limits::fd_margin);
  c.worker.watchdog = Duration::zero();
  CHECK(os::fds_needed(c, 32) == 33 + 33 * 3 + limits::fd_margin);
}

TEST_CASE("check_fd_limit names the numbers and the limit", "[fd_limit]") {
  const Config c = with_listeners(1, 0);
  CHECK(os::check_fd_limit(c, 2, {64, 64}).ok());
  const Status st = os::check_fd_limit(c, 32, {64, 64});
  REQUIRE_FALSE(st.ok());
  CHECK(st.error() ==
        "32 workers need about 164 file descriptors (1 listener, output pipes and 32 for the master), but the "
        "limit (RLIMIT_NOFILE) is 64 (hard limit 64); raise it (ulimit -n, LimitNOFILE=) or use fewer workers");
}

TEST_CASE("raise_fd_limit raises the soft limit to the hard limit", "[fd_limit]") {
  rlimit before{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &before) == 0);
  rlimit lowered = before;
  lowered.rlim_cur = std::min<rlim_t>(before.rlim_max, 256);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
  const auto limit = os::raise_fd_limit();
  REQUIRE(limit.ok());
  rlimit after{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &after) == 0);
  CHECK(after.rlim_cur == before.rlim_max);
  CHECK(limit->hard == static_cast<std::uint64_t>(before.rlim_max));
  CHECK(::setrlimit(RLIMIT_NOFILE, &before) == 0);
}
