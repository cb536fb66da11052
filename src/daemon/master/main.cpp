// preforkd: reads the config, binds the sockets, starts the workers and supervises them.

#include <preforkd/core/config.hpp>
#include <preforkd/core/command_line.hpp>
#include <preforkd/core/control_protocol.hpp>
#include <preforkd/core/exit_codes.hpp>
#include <preforkd/daemon/balance/balancer.hpp>
#include <preforkd/daemon/master/fd_store.hpp>
#include <preforkd/daemon/supervision/generation.hpp>
#include <preforkd/daemon/log/logging.hpp>
#include <preforkd/daemon/master/master.hpp>
#include <preforkd/daemon/uv/signal_watch.hpp>
#include <preforkd/os/affinity.hpp>
#include <preforkd/daemon/upgrade/upgrade.hpp>
#include <preforkd/os/children.hpp>
#include <preforkd/os/cpu.hpp>
#include <preforkd/os/image_exec.hpp>
#include <preforkd/os/fd_limit.hpp>
#include <preforkd/os/reuseport_ebpf.hpp>
#include <preforkd/os/system_lookup.hpp>
#include <preforkd/version.hpp>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <unistd.h>

namespace {

constexpr int exit_ok = preforkd::exit_code::ok;
constexpr int exit_failed = preforkd::exit_code::failed;
constexpr int exit_config = preforkd::exit_code::config;

// A test build (preforkd_next) says another version, so that an upgrade can be seen.
#ifdef PREFORKD_VERSION_OVERRIDE
constexpr const char* daemon_version = PREFORKD_VERSION_OVERRIDE;
#else
constexpr const char* daemon_version = preforkd::version;
#endif

struct Options {
  std::string config;
  bool check = false;
  bool state_format = false;
  int check_state_fd = -1;
  int resume_from_fd = -1;
};

// After the exec of an upgrade there is no old image to go back to: a new image that
// cannot carry on says why, answers the client that asked, and exits 1, so that a service
// manager restarts it (systemd's Restart=on-failure; its fd store keeps the sockets and
// their queues). Its workers go with it (their parent-death signal).
int fail_resumed(const std::optional<preforkd::MasterState>& resumed, const std::string& why) {
  spdlog::error("upgrade: the new image cannot carry on: {}; exiting with status {}", why, exit_failed);
  if (resumed && resumed->reply)
    preforkd::daemon::answer_upgrade_client(
        resumed->reply->fd,
        preforkd::control::make_error("upgrade: the new image cannot carry on: " + why).dump() + "\n");
  return exit_failed;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace preforkd;
  // This program's path before anything can replace the file: an upgrade execs it again.
  const std::string self_path = os::own_executable_path();
  Options opt;
  CLI::App app{"preforkd: a prefork supervisor for any server binary"};
  app.add_option("-c,--config", opt.config, "the TOML configuration file")->required();
  auto* check = app.add_flag("--check", opt.check, "validate the configuration and exit (0 ok, 78 errors)");
  app.add_flag("--state-format", opt.state_format,
               "with --check: also print the upgrade state formats this binary reads and its version "
               "(what `preforkctl upgrade` asks the new binary before it execs it)")
      ->needs(check);
  // Internal: set by the running master when it execs its new image (preforkctl upgrade).
  app.add_option(daemon::resume_option, opt.resume_from_fd)->group("");
  // Internal: the upgrade's preflight hands the state it would hand over, to be decoded and
  // checked against the config as the resumed image will (nothing is opened).
  app.add_option(daemon::check_state_option, opt.check_state_fd)->group("")->needs(check);
  app.set_version_flag("--version", std::string("preforkd ") + daemon_version);
  if (const auto exit_now = parse_command_line(app, argc, argv)) return *exit_now;
  // The fds systemd passed (LISTEN_FDS), noted before the master opens any of its own, so
  // that only fds open at this instant are taken or closed as passed ones. After an upgrade
  // the first image read them already.
  const fd_store::PassedFds passed =
      opt.check || opt.resume_from_fd >= 0 ? fd_store::PassedFds{} : daemon::read_listen_fds();
  // A stop or control signal sent while the master starts waits for its handler
  // (Master::run) instead of killing the master half started. (--check stays interruptible.)
  if (!opt.check) daemon::block_master_signals();

  // Read and validate the whole config before touching anything. --check also looks up the
  // users, groups and program, so what would fail at start is reported with its place.
  const char* path_env = std::getenv("PATH");
  SystemLookup lookup = os::system_lookup(path_env != nullptr ? path_env : "/usr/bin:/bin");
  lookup.usable_cpu_list = os::read_usable_cpu_list;
  lookup.ebpf_problem = os::reuseport_steering_unavailable;
  // At start, only worker.cpu_affinity is checked against the system (the CPU mask).
  SystemLookup cpus_only;
  cpus_only.usable_cpu_list = os::read_usable_cpu_list;
  ConfigResult loaded = load_config(opt.config, os::read_usable_cpus(), opt.check ? &lookup : &cpus_only);
  if (!loaded.errors.empty() && opt.check) {
    for (const auto& e : loaded.errors) daemon::print_error(e.to_string());
    return exit_config;
  }
  // The log starts with the version banner, also when start-up fails: the log of a bad
  // config has the config's default format, as it has no log_format to read.
  if (!opt.check) {
    if (loaded.config)
      daemon::setup_logging(loaded.config->daemon.log_level, loaded.config->daemon.log_format);
    else
      daemon::setup_logging(LogLevel::info, LogFormat::text);
    if (opt.resume_from_fd >= 0)
      spdlog::info("preforkd {} (pid {}) resuming with '{}' after an upgrade", daemon_version, ::getpid(), opt.config);
    else
      spdlog::info("preforkd {} (pid {}) starting with '{}'", daemon_version, ::getpid(), opt.config);
  }
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) spdlog::error("{}", e.to_string());
    return exit_config;
  }
  Config config = std::move(*loaded.config);
  if (opt.check) {
    if (opt.check_state_fd >= 0) {
      // The same steps as the resumed image's, up to the fds: decode, then check.
      auto state = daemon::read_state(opt.check_state_fd);
      Status fits = state ? check_resumable(*state, config) : Status{Error{state.error()}};
      if (!fits) {
        daemon::print_error(opt.config + ": the running master's state: " + fits.error());
        return exit_failed;
      }
    }
    std::printf("%s: ok\n", opt.config.c_str());
    if (opt.state_format) std::printf("%sversion: %s\n", describe_state_formats().c_str(), daemon_version);
    return exit_ok;
  }
  // The previous image of this same process left its state (preforkctl upgrade).
  std::optional<MasterState> resumed;
  if (opt.resume_from_fd >= 0) {
    auto state = daemon::read_state(opt.resume_from_fd);
    Status fits = state ? check_resumable(*state, config) : Status{Error{state.error()}};
    if (!fits) {
      spdlog::error("cannot resume after an upgrade: {}; exiting with status {}", fits.error(), exit_failed);
      if (state && state->reply)
        daemon::answer_upgrade_client(
            state->reply->fd,
            control::make_error("upgrade: the new image cannot resume: " + fits.error()).dump() + "\n");
      return exit_failed;
    }
    resumed = std::move(*state);
    config.worker.count = resumed->target_count;
  }
  // An absolute path: reloads and status name the file the same way from anywhere.
  std::error_code ec;
  if (auto abs = std::filesystem::absolute(opt.config, ec); !ec) config.path = abs.lexically_normal().string();

  // A broken pipe is an error return for the master, not a death, and glibc's own signals
  // (32, 33) cannot kill it; workers get SIG_DFL back. Every other signal is watched in
  // Master::run.
  if (Status ignored = daemon::ignore_unwatched_signals(); !ignored) spdlog::warn("{}, ignoring", ignored.error());

  // As many descriptors as allowed, and refuse a config that cannot fit rather than run
  // with every spawn failing on EMFILE.
  if (auto fd_limit = os::raise_fd_limit(); !fd_limit) {
    spdlog::warn("{}, ignoring", fd_limit.error());
  } else if (Status fits = os::check_fd_limit(config, config.worker.count, *fd_limit); !fits) {
    if (resumed) return fail_resumed(resumed, fits.error());
    spdlog::error("{}", fits.error());
    return exit_failed;
  }

  // Each worker in a cgroup of its own where one can be made; before the sockets, so the
  // leftovers of a master killed with -9 are gone before they could share its port.
  auto cgroups = daemon::open_worker_cgroups(config.daemon.worker_cgroups,
                                             resumed ? os::OwnCgroup::adopt : os::OwnCgroup::fresh);
  if (!cgroups) {
    if (resumed) return fail_resumed(resumed, cgroups.error());
    spdlog::error("{}", cgroups.error());
    return exit_failed;
  }

  // The sockets systemd kept in its fd store for us (a restart after a crash): taken
  // back where they match the config, so their accept queues survive; passed fds that are
  // not taken are closed here. After an upgrade the first image took them.
  daemon::InheritedSockets inherited;
  if (!resumed) {
    auto taken = daemon::take_inherited_sockets(passed, config.listeners, config.worker.count);
    if (!taken) {
      spdlog::error("{}", taken.error());
      return exit_failed;
    }
    inherited = std::move(*taken);
  }
  // The master binds every socket itself; a failure here stops start-up. After an upgrade
  // they are the same sockets, still open.
  auto listeners = resumed ? os::ListenerSet::adopt(config.listeners, resumed->target_count, resumed->listeners)
                   : inherited.listeners ? Result<os::ListenerSet>(std::move(*inherited.listeners))
                                         : os::ListenerSet::open(config.listeners, config.worker.count);
  if (!listeners) {
    if (resumed) return fail_resumed(resumed, "cannot take the sockets: " + listeners.error());
    spdlog::error("{}", listeners.error());
    return exit_failed;
  }
  // An adaptive pool starts its first min_count slots only: the sockets listen from here
  // on, so until the supervisor's own steering is in place (the eBPF program takes a while
  // to load) new connections go to those slots, never to one that has no worker coming.
  if (!resumed && config.worker.pool.mode != PoolMode::fixed && config.worker.pool.min_count > 0) {
    std::vector<int> first;
    for (int s = 0; s < std::min(config.worker.pool.min_count, config.worker.count); ++s) first.push_back(s);
    if (Status st = listeners->steer(first); !st) spdlog::warn("cannot steer connections: {}, ignoring", st.error());
  }
  // balance = "load" in the kernel where the eBPF program loads (preforkd.ebpf).
  auto steering = daemon::choose_load_steering(config.daemon.ebpf, config.listeners);
  if (!steering) {
    if (resumed) return fail_resumed(resumed, steering.error());
    spdlog::error("{}", steering.error());
    return exit_failed;
  }
  listeners->use_load_steering(*steering);
  // The program, the user and group are resolved once, before any fork.
  auto gen = daemon::make_generation(config, resumed ? resumed->generation : 0);
  if (!gen) {
    if (resumed) return fail_resumed(resumed, opt.config + ": " + gen.error());
    spdlog::error("{}: {}", opt.config, gen.error());
    return exit_config;
  }
#ifdef PREFORKD_VERSION_OVERRIDE
  // The upgrade tests' build only: a new image that fails after it has taken its state.
  if (resumed && std::getenv("PREFORKD_NEXT_FAIL_AFTER_RESUME") != nullptr)
    return fail_resumed(resumed, "PREFORKD_NEXT_FAIL_AFTER_RESUME is set (a test build)");
#endif

  // Orphaned grandchildren are re-parented to us and reaped, as PID 1 or not.
  if (!os::become_subreaper()) spdlog::warn("cannot become a child subreaper, ignoring");

  if (resumed) spdlog::info("upgrade: the previous image was preforkd {}", resumed->version);
  daemon::Master master(std::move(config), std::move(*gen), std::move(*listeners));
  master.use_worker_cgroups(std::move(*cgroups));
  master.set_program(self_path, daemon_version);
  if (resumed) master.resume_from(std::move(*resumed));
  master.remove_from_fd_store(inherited.dropped_names);
  return master.run();
}
