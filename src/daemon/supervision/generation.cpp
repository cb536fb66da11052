#include <preforkd/daemon/supervision/generation.hpp>

#include <cstdlib>
#include <filesystem>
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
  gen->path_env = path_env ? path_env : "/usr/bin:/bin";
  gen->executable = os::resolve_executable(config.worker.command.front(), gen->path_env);
  // Where the worker's chdir lands: a relative directory is the master's, as for chdir(2).
  std::error_code ec;
  const auto dir = std::filesystem::absolute(config.worker.directory.empty() ? "." : config.worker.directory, ec);
  gen->directory = ec ? config.worker.directory : dir.lexically_normal().string();
  if (gen->directory.size() > 1 && gen->directory.ends_with('/')) gen->directory.pop_back();
  gen->credentials = std::move(credentials.value());
  gen->output = config.daemon.worker_output == WorkerOutput::log ? os::OutputMode::capture : os::OutputMode::inherit;
  gen->policy = LifecyclePolicy::from(config.worker);
  return gen;
}

}  // namespace preforkd::daemon
