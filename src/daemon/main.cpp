// preforkd: reads the config, binds the sockets, starts the workers and supervises them.

#include <preforkd/core/config.hpp>
#include <preforkd/daemon/logging.hpp>
#include <preforkd/daemon/master.hpp>
#include <preforkd/os/children.hpp>
#include <preforkd/os/cpu.hpp>
#include <preforkd/version.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
constexpr int exit_config = 78;

struct Options {
  std::string config;
  bool check = false;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace preforkd;
  Options opt;
  CLI::App app{"preforkd: a prefork supervisor for any server binary"};
  app.add_option("-c,--config", opt.config, "the TOML configuration file")->required();
  app.add_flag("--check", opt.check, "validate the configuration and exit (0 ok, 78 errors)");
  app.set_version_flag("--version", std::string("preforkd ") + version);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return exit_usage;
  }

  // Read and validate the whole config before touching anything.
  ConfigResult loaded = load_config(opt.config, os::read_usable_cpus());
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return exit_config;
  }
  Config config = std::move(*loaded.config);
  if (opt.check) {
    std::printf("%s: ok\n", opt.config.c_str());
    return exit_ok;
  }

  daemon::setup_logging(config.daemon.log_level, config.daemon.log_format);
  // A broken pipe is an error return for the master, not a death; workers get SIG_DFL back.
  std::signal(SIGPIPE, SIG_IGN);

  // Privileges: workers run as worker.user/group; resolving names needs NSS, so before fork.
  auto credentials = os::resolve_credentials(config.worker.user, config.worker.group);
  if (!credentials) {
    std::fprintf(stderr, "%s: worker.user: %s\n", opt.config.c_str(), credentials.error().c_str());
    return exit_config;
  }
  if (credentials.value() && ::geteuid() != 0) {
    if (credentials.value()->uid != ::geteuid() || credentials.value()->gid != ::getegid()) {
      std::fprintf(stderr, "%s: worker.user: switching to another user needs root\n", opt.config.c_str());
      return exit_config;
    }
    credentials.value().reset();  // already that user: nothing to drop
  }

  // The master binds every socket itself; a failure here stops start-up.
  auto listeners = os::ListenerSet::open(config.listeners, config.worker.count);
  if (!listeners) {
    spdlog::error("{}", listeners.error());
    return exit_failed;
  }

  // Orphaned grandchildren are re-parented to us and reaped, as PID 1 or not.
  if (!os::become_subreaper()) spdlog::warn("cannot become a child subreaper, ignoring");

  daemon::LaunchPlan plan;
  plan.worker = config.worker;
  const char* path_env = std::getenv("PATH");
  plan.executable = os::resolve_executable(config.worker.command.front(), path_env ? path_env : "/usr/bin:/bin");
  plan.credentials = std::move(credentials.value());
  plan.output = config.daemon.worker_output == WorkerOutput::log ? os::OutputMode::capture : os::OutputMode::inherit;

  spdlog::info("preforkd {} (pid {}) starting with {}", version, ::getpid(), opt.config);
  daemon::Master master(std::move(config), std::move(plan), std::move(*listeners));
  return master.run();
}
