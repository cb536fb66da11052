#pragma once
// The supervisor's state as the running master hands it to its replacement image in an
// in-place upgrade (`preforkctl upgrade`, SIGUSR2): what survives the exec besides the
// file descriptors themselves. Pure data and its JSON form, with a format version that
// the new image must accept (`preforkd --check --state-format` prints the ones it does).
// Times are carried as durations relative to the moment the state was written (the
// monotonic clock keeps going across an exec, but a remaining time reads plainly).

#include <preforkd/core/exit_status.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/core/worker_lifecycle.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd {

// The format this build writes; the formats it reads are in accepted_state_formats().
// 2: each run carries its own notify socket (1: one socket shared by all workers).
inline constexpr int master_state_format = 2;
[[nodiscard]] std::vector<int> accepted_state_formats();

// A worker run in a slot, as the old image left it.
struct RunState {
  int pid = -1;        // -1: no process (backoff, failed, stopped)
  Lifecycle life;      // state, failures, stop intent, trial, short_of_fds
  bool reached_ready = false;
  std::int64_t uptime_ms = 0;                // since the current process started
  std::optional<std::int64_t> timer_ms;      // the lifecycle timer's remaining time, if armed
  std::optional<std::int64_t> watchdog_ms;   // the watchdog's remaining time, if armed
  int stdout_fd = -1;  // the read ends of the worker's output pipes (worker_output = "log")
  int stderr_fd = -1;
  int notify_fd = -1;         // the run's own NOTIFY_SOCKET; -1: none (format 1 had none)
  std::string notify_address;
  std::string notify_status;
  bool notified_stopping = false;
  int cpu = -1;  // pinned to (worker.cpu_affinity); -1: not pinned
  bool operator==(const RunState&) const = default;
};

struct LastExitState {
  ExitStatus status;
  double unix_time = 0;  // wall clock: survives anything
  std::string cause;     // "stalled" when the master stopped it as a fault, else ""
  bool operator==(const LastExitState&) const = default;
};

struct SlotState {
  RunState run;
  int restarts = 0;
  std::optional<LastExitState> last_exit;
  int crashes = 0;                            // unplanned exits
  std::map<std::string, int> replaced_for;    // planned replacements by reason ("reload": 2)
  bool had_process = false;
  bool operator==(const SlotState&) const = default;
};

// One [[listen]] entry's sockets: per slot for reuseport, one for shared.
struct ListenerState {
  std::string name;
  std::string address;  // as in the config, to check that the config still says the same
  std::vector<int> fds;
  // The unix socket file the set created (unlinked at stop while it is still this file).
  std::string socket_path;
  std::uint64_t socket_dev = 0;
  std::uint64_t socket_ino = 0;
  bool operator==(const ListenerState&) const = default;
};

// The control client that asked for the upgrade: the new image answers it.
struct UpgradeReply {
  int fd = -1;
  std::string old_version;
  bool operator==(const UpgradeReply&) const = default;
};

struct MasterState {
  int format = master_state_format;
  std::string version;      // of the image that wrote it
  std::string config_path;  // absolute
  int generation = 0;       // PREFORK_GENERATION
  int target_count = 0;     // the worker count (a scale may differ from the file's)
  double uptime_s = 0;      // of the master process, for status
  int upgrades = 0;         // in-place upgrades so far
  int control_fd = -1;      // the listening control socket
  std::uint64_t control_dev = 0;  // its file, removed at stop while it is still this one
  std::uint64_t control_ino = 0;
  // The NOTIFY_SOCKET that an image of format 1 shared among all its workers, still served
  // for the runs it started until they have sockets of their own; -1: none.
  int notify_fd = -1;
  std::string notify_address;
  std::vector<ListenerState> listeners;
  std::vector<SlotState> slots;
  std::optional<UpgradeReply> reply;
  std::vector<int> blocked_signals;  // the signal mask before the upgrade, restored after
  bool operator==(const MasterState&) const = default;
};

// One JSON document.
[[nodiscard]] std::string encode_master_state(const MasterState& state);
// Refuses a document of a format this build does not accept ("state format 7 is not
// accepted (this preforkd reads 1)"), malformed JSON, or missing fields, saying which.
[[nodiscard]] Result<MasterState> decode_master_state(std::string_view text);

// Whether the listeners handed on can be taken under `listeners` without opening anything:
// the same names and addresses, in order, with one socket per slot (`slots` of them) for
// a reuseport listener and one for the others. ListenerSet::adopt checks it before it
// takes the fds, and so does the preflight on the running master's real state.
[[nodiscard]] Status check_handed_listeners(const std::vector<ListenConfig>& listeners, int slots,
                                            const std::vector<ListenerState>& handed);
// What the new image checks of a decoded state under the config it reads, before it
// touches an fd: the worker count within limits, and check_handed_listeners.
[[nodiscard]] Status check_resumable(const MasterState& state, const Config& config);

// "state-format: 1" lines of `preforkd --check --state-format`, and their reading.
[[nodiscard]] std::string describe_state_formats();
[[nodiscard]] std::vector<int> parse_state_formats(std::string_view check_output);

}  // namespace preforkd
