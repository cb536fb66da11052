#pragma once
// The syscalls of the master's in-place upgrade (daemon/upgrade puts them together): its own
// path, the state in a memfd, a check run of the new binary with its output captured, the
// exec itself with the fds and the signal mask it changes, and the one reply line the new
// image writes to the client that asked.

#include <preforkd/core/exit_status.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>
#include <preforkd/os/fd.hpp>

#include <csignal>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::os {

// The path of this program as it was at start: /proc/self/exe, read before a package
// can replace the file (after that, the link reads "... (deleted)"). Empty if unreadable.
[[nodiscard]] std::string own_executable_path();

// Whether a memfd survives an exec.
enum class OnExec { close, keep };

// A memfd named `name` holding `text`, its offset back at the start.
[[nodiscard]] Result<Fd> text_memfd(const char* name, std::string_view text, OnExec on_exec);

// In the image that was handed `fd` (a text_memfd, or a pipe): its text from the start
// (a pipe from where it is), at most `max_bytes`, and closes it. `name` says what it is in
// an error.
[[nodiscard]] Result<std::string> take_handed_text(int fd, std::string_view name, std::size_t max_bytes);

// How a program run to completion ended, and what it wrote (stdout and stderr together, at
// most `output_bytes` of it).
struct CompletedRun {
  ExitStatus status;
  std::string output;
};

enum class RunEnd { exited, timed_out };
struct RunResult {
  RunEnd end = RunEnd::exited;
  CompletedRun run;
};

// Runs argv (argv[0] is the program's path) with `stdin_fd` as its stdin, an empty signal
// mask and SIGPIPE at its default, reads its output until EOF or `deadline`, then reaps
// it with os::reap (killing it first if the deadline passed: then the result is
// RunEnd::timed_out and `status` says how the kill ended it). A failed spawn or a failed
// wait is an error ("failed to run '<path>': …", "failed to wait for 'pid N': …"): a
// child reaped elsewhere never reads as a success.
[[nodiscard]] Result<RunResult> run_to_completion(const std::vector<std::string>& argv, int stdin_fd, Duration deadline,
                                                  std::size_t output_bytes);

// Everything an exec changes in this process, undone if the exec fails: the fds made
// inheritable again get FD_CLOEXEC, the signal mask comes back.
class ExecAttempt {
 public:
  ExecAttempt() = default;
  ExecAttempt(const ExecAttempt&) = delete;
  ExecAttempt& operator=(const ExecAttempt&) = delete;
  ~ExecAttempt() { undo(); }

  // Lets `fd` survive the exec (a negative fd is skipped).
  [[nodiscard]] Status keep(int fd);
  // Blocks every signal until the new image has its handlers; the previous mask is in
  // `blocked`.
  void block_signals(std::vector<int>* blocked);
  // Returns only on failure: "cannot execute '<binary>': <strerror>", the words of a
  // worker's exec failure (core/exec_failure), which users and tests quote.
  [[nodiscard]] Error exec(const std::string& binary, const std::vector<std::string>& argv);
  void undo();

 private:
  std::vector<int> kept_;
  sigset_t old_mask_{};
  bool blocked_ = false;
};

// Writes `line` to the non-blocking socket `fd` within `deadline` (a client that does not
// read its one reply line is not worth waiting for), and closes it. A negative fd is skipped.
void send_line_and_close(int fd, std::string_view line, Duration deadline);

}  // namespace preforkd::os
