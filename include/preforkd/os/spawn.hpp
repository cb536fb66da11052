#pragma once
// fork + exec of one worker with the socket-activation protocol.
//
// Everything the child needs is prepared before fork; between fork and exec the child
// only makes async-signal-safe calls. LISTEN_PID is written into a buffer prepared in
// advance, since only the child knows its pid.
//
// A worker with a cgroup starts in it: clone3(CLONE_INTO_CGROUP) puts the child there as it
// is created. Moving a running process instead (a write to cgroup.procs) takes the cgroup
// core's global lock for writing, which waits for an RCU grace period: ~13 ms per start on
// the 2-core VM (README, Performance). Where clone3 or CLONE_INTO_CGROUP is missing (Linux
// before 5.7, a seccomp filter) the child joins by that write, between fork and exec.

#include <preforkd/core/result.hpp>
#include <preforkd/os/fd.hpp>

#include <csignal>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

enum class OutputMode { capture, inherit };

struct SpawnSpec {
  std::string executable;          // an absolute or directory-relative path (see resolve_executable)
  std::vector<std::string> argv;   // argv[0] included
  std::vector<std::string> env;    // "NAME=value", without LISTEN_PID and WATCHDOG_PID (spawn adds them)
  std::vector<int> listen_fds;     // become fds 3, 4, … in the child
  std::string directory;           // empty: stay in the master's directory
  std::optional<Credentials> credentials;  // drop privileges to these
  OutputMode output = OutputMode::capture;
  pid_t master_pid = 0;            // the child exits if its parent is no longer this pid
  bool with_watchdog_pid = false;  // also set WATCHDOG_PID to the child's pid
  int cgroup_fd = -1;              // an open cgroup v2 directory: the child starts in that cgroup
  int cpu = -1;                    // pin the child to this CPU (worker.cpu_affinity); -1: inherit the mask
};

struct SpawnedProcess {
  pid_t pid = -1;
  Fd stdout_pipe;  // read ends, non-blocking; invalid when output is inherited
  Fd stderr_pipe;
  // 0 when the child exec'd the program, else the errno of its failed exec (or of the
  // set-up before it): known when spawn returns, as posix_spawn reports it.
  int exec_errno = 0;
  // Set on the first spawn into a cgroup that could not use clone3(CLONE_INTO_CGROUP): why.
  // That child and every later one join their cgroup by writing cgroup.procs before exec.
  std::string cgroup_fallback;
};

struct SpawnError {
  std::string message;       // "failed to create a pipe for '/usr/bin/app': too many open files"
  bool fd_shortage = false;  // EMFILE or ENFILE: the master is short of fds, not the worker at fault
};

// Starts the child and waits until it has exec'd or failed to (as posix_spawn does). A child
// that failed to exec still exists until it is reaped: it exits 127 (ENOENT) or 126. The
// error names the failing call ("fork: resource temporarily unavailable").
[[nodiscard]] Result<SpawnedProcess, SpawnError> spawn(const SpawnSpec& spec);

// spawn() starts children with clone(CLONE_VM), which is safe only while this process has
// exactly one thread (see spawn_child.cpp). Checks that; when it does not hold, or cannot be
// checked, spawn() uses fork from now on and the error says why.
[[nodiscard]] Status check_single_threaded();

// Resolves a command name: a name with a '/' is used as is (relative to the worker's
// directory when relative); a bare name is searched in PATH. Unresolvable names come back
// unchanged so that exec reports the error with its errno.
[[nodiscard]] std::string resolve_executable(const std::string& name, const std::string& path_env);

// Looks up user and group names (or numeric ids). Empty user and group: nullopt.
[[nodiscard]] Result<std::optional<Credentials>> resolve_credentials(const std::string& user, const std::string& group);

}  // namespace preforkd::os
