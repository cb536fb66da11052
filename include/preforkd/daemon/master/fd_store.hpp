#pragma once
// The master's listening sockets in systemd's fd store (FileDescriptorStoreMax= in the
// unit): stored with "FDSTORE=1" under the names of core/fd_store_names whenever the set
// changes (start, scale, reload), removed with "FDSTOREREMOVE=1" when closed; and at
// start, the stored sockets systemd passes back (LISTEN_FDS) are taken instead of bound
// when they are what the config asks for, so a master that crashed and was restarted
// keeps the accept queues. The control and metrics sockets are not stored: a control
// client should fail at once while no master runs, not wait in a queue.
//
// Without NOTIFY_SOCKET nothing is sent. Without a store in the unit systemd drops the
// fds (systemd >= 254 says so in $FDSTORE, and then nothing is sent either).

#include <preforkd/core/config.hpp>
#include <preforkd/core/fd_store_names.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/os/listener_set.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace preforkd::daemon {

class FdStore {
 public:
  FdStore();

  // Stores what `listeners` has and the store has not (also a socket now different under
  // a known name), and removes the names of sockets that are gone.
  void sync(const os::ListenerSet& listeners);
  // Removes `names` from the store (sockets systemd passed back that were not taken).
  void remove(const std::vector<std::string>& names);
  [[nodiscard]] bool enabled() const { return enabled_; }

 private:
  bool send(const std::string& message, int fd);

  bool enabled_ = false;
  std::size_t limit_ = SIZE_MAX;                 // $FDSTORE when systemd set it
  std::map<std::string, std::uint64_t> stored_;  // name -> socket inode
  std::set<std::string> warned_;                 // sockets said once not to fit
};

// What start-up took from LISTEN_FDS.
struct InheritedSockets {
  std::optional<os::ListenerSet> listeners;  // nullopt: nothing of ours was passed
  std::vector<std::string> dropped_names;    // ours but not taken: to remove from the store
};

// Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES and unsets them (no worker inherits
// them), with the fds open at this instant: called first thing in main, before the master
// opens any fd of its own, so that only fds found open here count as passed. The fds of
// 3 .. 3+LISTEN_FDS-1 get FD_CLOEXEC until take_inherited_sockets takes or closes them.
[[nodiscard]] fd_store::PassedFds read_listen_fds();

// Takes the stored sockets of `passed` that match the config's listeners for `slots`
// slots, binds what is missing, and closes the rest, logging what was taken, dropped and
// why. Sockets of other names (a .socket unit) are closed with a warning. When the
// variables did not apply (another process's LISTEN_PID, more fds than are open, a wrong
// number of names), every fd they name that is open is closed, and one warning says why and
// what each fd was, so that a leftover socket cannot hold the master's own address. An
// error when the missing sockets cannot be bound.
[[nodiscard]] Result<InheritedSockets> take_inherited_sockets(const fd_store::PassedFds& passed,
                                                              const std::vector<ListenConfig>& listeners, int slots);

}  // namespace preforkd::daemon
