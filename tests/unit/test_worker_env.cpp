// The worker's environment: the master's own less what belongs to the master's supervisor.

#include <preforkd/core/worker_env.hpp>

#include <catch2/catch.hpp>

#include <algorithm>

using namespace preforkd;
using namespace std::chrono_literals;

namespace {

bool has(const std::vector<std::string>& env, const std::string& entry) {
  return std::ranges::find(env, entry) != env.end();
}
bool has_name(const std::vector<std::string>& env, const std::string& name) {
  return std::ranges::any_of(env, [&](const std::string& e) { return e.rfind(name + "=", 0) == 0; });
}

}  // namespace

TEST_CASE("worker environment") {
  WorkerConfig w;
  w.env = {{"APP_ENV", "production"}, {"HOME", "/srv"}};
  WorkerIdentity id;
  id.slot = 2;
  id.workers = 4;
  id.master_pid = 100;
  id.generation = 3;
  id.listen_fds = 2;
  id.fd_names = "http:admin";
  const std::vector<std::string> master = {"PATH=/usr/bin", "HOME=/root", "NOTIFY_SOCKET=/run/systemd/notify",
                                           "WATCHDOG_USEC=1000", "WATCHDOG_PID=1", "LISTEN_FDS=3",
                                           "LISTEN_PID=1", "PREFORK_WORKER_ID=9"};
  auto env = build_worker_env(master, w, id);
  CHECK(has(env, "PATH=/usr/bin"));
  CHECK(has(env, "HOME=/srv"));  // the config overrides the master's
  CHECK_FALSE(has(env, "HOME=/root"));
  CHECK(has(env, "APP_ENV=production"));
  CHECK_FALSE(has_name(env, "NOTIFY_SOCKET"));  // the master's systemd socket never leaks
  CHECK_FALSE(has_name(env, "WATCHDOG_USEC"));
  CHECK_FALSE(has_name(env, "WATCHDOG_PID"));
  CHECK_FALSE(has_name(env, "LISTEN_PID"));  // spawn adds the worker's own
  CHECK(has(env, "LISTEN_FDS=2"));
  CHECK(has(env, "LISTEN_FDNAMES=http:admin"));
  CHECK(has(env, "PREFORK_CHILD=1"));
  CHECK(has(env, "PREFORK_WORKER_ID=2"));
  CHECK(has(env, "PREFORK_WORKERS=4"));
  CHECK(has(env, "PREFORK_MASTER_PID=100"));
  CHECK(has(env, "PREFORK_GENERATION=3"));
  CHECK_FALSE(has(env, "PREFORK_WORKER_ID=9"));

  id.notify_socket = "/run/preforkd/notify";
  id.watchdog = 2s;
  env = build_worker_env(master, w, id);
  CHECK(has(env, "NOTIFY_SOCKET=/run/preforkd/notify"));
  CHECK(has(env, "WATCHDOG_USEC=2000000"));
}
