#pragma once
// The environment a worker starts with: the master's own, less what belongs to the
// master's supervisor (systemd's LISTEN_*, NOTIFY_SOCKET, WATCHDOG_*), plus the config's
// env and the contract's PREFORK_* and LISTEN_* variables. LISTEN_PID is added by spawn.

#include <preforkd/core/config.hpp>

#include <string>
#include <sys/types.h>
#include <vector>

namespace preforkd {

struct WorkerIdentity {
  int slot = 0;
  int workers = 1;
  pid_t master_pid = 0;
  int generation = 0;
  std::size_t listen_fds = 0;
  std::string fd_names;       // "http:admin"
  std::string notify_socket;  // empty: none
  Duration watchdog{};        // zero: none
};

[[nodiscard]] std::vector<std::string> build_worker_env(const std::vector<std::string>& master_env,
                                                        const WorkerConfig& worker, const WorkerIdentity& id);

}  // namespace preforkd
