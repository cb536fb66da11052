#include <preforkd/core/limits.hpp>
#include <preforkd/core/message_text.hpp>
#include <preforkd/os/fd_limit.hpp>
#include <preforkd/os/sys_error.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <sys/resource.h>

namespace preforkd::os {

std::uint64_t fds_needed(const Config& config, int workers) {
  const auto slots = static_cast<std::uint64_t>(workers) + static_cast<std::uint64_t>(config.worker.max_surge);
  std::uint64_t sockets = 0;
  for (const ListenConfig& l : config.listeners) sockets += l.mode == ListenMode::reuseport ? slots : 1;
  // stdout and stderr pipes when captured, and the exec report until the worker is reaped;
  // and the run's own notify socket when workers speak sd_notify.
  const bool notify = config.worker.ready.kind == ReadyKind::notify || config.worker.watchdog > Duration::zero();
  const std::uint64_t per_worker = (config.daemon.worker_output == WorkerOutput::log ? 3 : 1) + (notify ? 1 : 0);
  return sockets + slots * per_worker + limits::fd_margin;
}

namespace {
std::uint64_t as_count(rlim_t v) {
  return v == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(v);
}
}  // namespace

Result<FdLimit> current_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return errno_error("read", "RLIMIT_NOFILE");
  }
  return FdLimit{as_count(rl.rlim_cur), as_count(rl.rlim_max)};
}

Result<FdLimit> raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return errno_error("read", "RLIMIT_NOFILE");
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    // Some kernels cap it at fs.nr_open below an "unlimited" hard limit: keep what we had then.
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return FdLimit{as_count(rl.rlim_cur), as_count(rl.rlim_max)};
}

Status check_fd_limit(const Config& config, int workers, const FdLimit& limit) {
  const std::uint64_t needed = fds_needed(config, workers);
  if (needed <= limit.soft) return Ok{};
  return Error{fmt::format(
      "{} need about {} file descriptors ({}, output pipes and {} for the master), but the "
      "limit (RLIMIT_NOFILE) is {} (hard limit {}); raise it (ulimit -n, LimitNOFILE=) or use fewer workers",
      plural(workers, "worker"), needed, plural(static_cast<std::int64_t>(config.listeners.size()), "listener"), limits::fd_margin, limit.soft, limit.hard)};
}

}  // namespace preforkd::os
