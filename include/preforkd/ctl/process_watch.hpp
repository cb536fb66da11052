#pragma once
// How `preforkctl stop` knows that the master has exited: its pid no longer names the
// process it named when the stop was sent. Read from /proc/<pid>/stat, which any user may
// read (kill(pid, 0) says EPERM for a root master and cannot tell a zombie).

#include <optional>
#include <sys/types.h>

namespace preforkd::ctl {

class ProcessWatch {
 public:
  // Remembers the process `pid` names now (its start time); nullopt when there is none.
  [[nodiscard]] static std::optional<ProcessWatch> of(pid_t pid);

  // True once that process is gone: no such pid, a zombie (exited, not yet reaped by its
  // parent), or the pid now names a newer process.
  [[nodiscard]] bool exited() const;

  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  ProcessWatch(pid_t pid, unsigned long long start) : pid_(pid), start_(start) {}
  pid_t pid_;
  unsigned long long start_;
};

}  // namespace preforkd::ctl
