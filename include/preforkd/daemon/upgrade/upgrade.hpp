#pragma once
// In-place upgrade of the master (preforkctl upgrade, SIGUSR2): the steps that do not
// need the Master itself. The master runs the new binary in check mode first (preflight),
// writes its state into a memfd, lets only the fds that must survive lose FD_CLOEXEC,
// blocks every signal and execs the binary at its own path with --resume-from-fd. Same
// pid, so the workers stay its children and systemd's MAINPID does not change.

#include <preforkd/core/master_state.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace preforkd::daemon {

// What the new binary said in check mode.
struct Preflight {
  std::string version;
  std::vector<int> formats;
};

// Runs `<binary> --config <config> --check --state-format --check-state-fd 0` with `state`
// (the document the exec would hand over) on its stdin (os::run_to_completion), waiting at
// most `deadline`: the new binary decodes the real state and checks it against the config,
// as its resumed image will, and opens nothing. An error says what failed: "preflight: '/usr/bin/preforkd'
// exited with status 1: <its last output line>", that it does not read this master's state
// format, or that it could not be waited for (a failed waitpid is never a success).
[[nodiscard]] Result<Preflight> run_preflight(const std::string& binary, const std::string& config,
                                              const MasterState& state, Duration deadline);

// The option that hands the state to the check (the preflight) and the one that hands it
// to the resumed image: internal, between two images of preforkd.
inline constexpr const char* check_state_option = "--check-state-fd";
inline constexpr const char* resume_option = "--resume-from-fd";

// The largest state document a resumed image reads: the fds and timers of at most
// limits::max_workers slots take well under a MiB.
inline constexpr std::size_t max_state_bytes = 64 * 1024 * 1024;

// In the new image: reads the state from the memfd that --resume-from-fd names, and
// closes it.
[[nodiscard]] Result<MasterState> read_state(int fd);
// Writes one reply line to the client that asked for the upgrade, and closes it.
void answer_upgrade_client(int fd, const std::string& line);

}  // namespace preforkd::daemon
