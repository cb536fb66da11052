// The flags of the sockets a worker starts with: O_NONBLOCK as [[listen]] non_blocking
// says (systemd's NonBlocking=, which systemd applies at every start of a service).
//
// O_NONBLOCK belongs to the open file, which every process holding the socket shares: a
// worker that sets it (asyncio, Go and libuv servers do) sets it for the next worker of
// its slot too. So before a spawn the master puts the configured value back on each socket
// the new worker gets, but only where no other worker process holds that socket: a flag
// a running worker relies on is never changed under it (a rolling update's overlap, the
// other workers of a shared socket). The master itself never depends on the flag
// (daemon/fail_fast checks readiness before each accept).

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"

#include <preforkd/os/socket_options.hpp>
#include <preforkd/os/sys_error.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace preforkd::daemon {

void Supervisor::hand_over_socket_flags(const WorkerRun& run, const os::ListenerSet& listeners,
                                        const std::vector<int>& fds) {
  const std::vector<ino_t> mine = listeners.socket_inodes_for_slot(run.slot);
  const auto& configs = listeners.configs();
  if (mine.size() != fds.size() || configs.size() != fds.size()) return;  // the set changed shape: nothing to match
  // A per-slot socket can be held only by runs of the same slot; a shared one by any.
  const bool any_shared = std::any_of(configs.begin(), configs.end(), [](const ListenConfig& c) {
    return c.mode == ListenMode::shared || c.address.family == AddressFamily::unix_path;
  });
  std::vector<bool> held(fds.size(), false);
  for_each_run([&](WorkerRun& other) {
    if (&other == &run || other.pid <= 0 || (other.slot != run.slot && !any_shared)) return;
    for (ino_t ino : socket_inodes_of(other))
      for (std::size_t i = 0; i < mine.size(); ++i) held[i] = held[i] || mine[i] == ino;
  });
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (held[i]) continue;
    if (auto failed = os::set_blocking_mode(configs[i], fds[i]))
      spdlog::warn("worker {}: listener '{}': failed to set {} on its socket: {}; it starts with the flag as it is",
                   run.slot, configs[i].name, failed->option, os::errno_text(failed->err));
  }
}

}  // namespace preforkd::daemon
