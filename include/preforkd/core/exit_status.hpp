#pragma once
// How a worker ended, from waitpid's status, and how that reads in a log line.

#include <string>

namespace preforkd {

struct ExitStatus {
  enum class Kind { exited, signaled };
  Kind kind = Kind::exited;
  int code = 0;    // exit status when kind == exited
  int signal = 0;  // signal number when kind == signaled
  bool core_dumped = false;

  [[nodiscard]] static ExitStatus from_wait_status(int wait_status);
  [[nodiscard]] static ExitStatus exited_with(int code) { return {Kind::exited, code, 0, false}; }
  [[nodiscard]] static ExitStatus killed_by(int sig, bool core = false) { return {Kind::signaled, 0, sig, core}; }

  [[nodiscard]] bool success() const { return kind == Kind::exited && code == 0; }
  // The shell's view: the exit status, or 128 + signal number.
  [[nodiscard]] int as_shell_code() const { return kind == Kind::exited ? code : 128 + signal; }
  bool operator==(const ExitStatus&) const = default;
};

// "exited with status 1", "exited on signal 11 (core dumped)", "exited on signal 9".
[[nodiscard]] std::string describe(const ExitStatus& status);

// "SIGTERM" for 15; "SIGRTMIN+6" for 40 (with glibc's SIGRTMIN of 34); "signal 77" for numbers
// without a name.
[[nodiscard]] std::string signal_name(int sig);

}  // namespace preforkd
