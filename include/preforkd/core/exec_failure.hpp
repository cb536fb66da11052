#pragma once
// A worker command that cannot be run: which exec errors say so, when a start has failed
// for good (as systemd fails a unit with 203/EXEC and supervisord marks a program FATAL),
// and the words that tell the operator where the command was looked for.

#include <optional>
#include <string>
#include <vector>

namespace preforkd {

// ENOENT, EACCES, ENOEXEC: the program cannot be run at all. Retrying does not help until
// someone fixes the file or the config.
[[nodiscard]] bool cannot_execute(int exec_errno);

// What the first process of every slot says about a start.
enum class StartVerdict {
  running,         // some worker runs, or something else went wrong: supervise as usual
  cannot_execute,  // every slot's first exec failed with cannot_execute(): exit 1 at once
};

// `first_exec_errnos`: per slot, the errno of its first process's exec (0: the program
// runs), or nullopt when no process could be started there (a spawn failure).
[[nodiscard]] StartVerdict judge_start(const std::vector<std::optional<int>>& first_exec_errnos);

// The slot's last exit, in status, when its process never ran the program.
inline constexpr const char* exec_failed_cause = "exec failed";

// Where a command was looked for.
struct ExecFacts {
  std::string command;    // as configured: worker.command[0]
  std::string resolved;   // what exec was given (a PATH search's result, or the command)
  std::string directory;  // the worker's working directory, absolute: relative paths resolve there
  std::string path_env;   // the PATH a bare name was searched in
  int exec_errno = 0;
};

// "cannot execute '<command>': <strerror>": the words of every exec failure, a worker's and
// the upgrade's (users and tests quote them).
[[nodiscard]] std::string cannot_execute_text(const std::string& command, int exec_errno);

// "cannot execute 'gunicornn': No such file or directory (not found in PATH=/usr/bin:/bin;
// working directory '/srv/app')", or for './app.py': "... (resolved to '/srv/app/app.py'
// against the working directory '/srv/app'; PATH=/usr/bin:/bin)".
[[nodiscard]] std::string describe_exec_failure(const ExecFacts& facts);

}  // namespace preforkd
