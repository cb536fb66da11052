#include <preforkd/daemon/generation.hpp>

#include <cstdlib>
#include <unistd.h>

namespace preforkd::daemon {

Result<std::shared_ptr<Generation>> make_generation(const Config& config, int number) {
  auto credentials = os::resolve_credentials(config.worker.user, config.worker.group);
  if (!credentials) return Error{(config.worker.user.empty() ? "worker.group: " : "worker.user: ") + credentials.error()};
  if (credentials.value() && ::geteuid() != 0) {
    // Without root, the only user a worker can run as is the master's own.
    if (credentials.value()->uid != ::geteuid() || credentials.value()->gid != ::getegid())
      return Error{"worker.user: running workers as another user needs preforkd to run as root"};
    credentials.value().reset();
  }
  auto gen = std::make_shared<Generation>();
  gen->number = number;
  gen->worker = config.worker;
  const char* path_env = std::getenv("PATH");
  gen->executable = os::resolve_executable(config.worker.command.front(), path_env ? path_env : "/usr/bin:/bin");
  gen->credentials = std::move(credentials.value());
  gen->output = config.daemon.worker_output == WorkerOutput::log ? os::OutputMode::capture : os::OutputMode::inherit;
  gen->policy = LifecyclePolicy::from(config.worker);
  return gen;
}

}  // namespace preforkd::daemon
