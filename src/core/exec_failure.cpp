#include <cerrno>
#include <cstring>
#include <filesystem>
#include <preforkd/core/exec_failure.hpp>

namespace preforkd {

bool cannot_execute(int exec_errno) {
  return exec_errno == ENOENT || exec_errno == EACCES || exec_errno == ENOEXEC;
}

StartVerdict judge_start(const std::vector<std::optional<int>>& first_exec_errnos) {
  if (first_exec_errnos.empty()) return StartVerdict::running;
  for (const auto& err : first_exec_errnos)
    if (!err || !cannot_execute(*err)) return StartVerdict::running;
  return StartVerdict::cannot_execute;
}

std::string cannot_execute_text(const std::string& command, int exec_errno) {
  return "cannot execute '" + command + "': " + std::strerror(exec_errno);
}

std::string describe_exec_failure(const ExecFacts& f) {
  const std::string what = cannot_execute_text(f.command, f.exec_errno);
  const std::string dir = "working directory '" + f.directory + "'";
  const std::string path = "PATH=" + f.path_env;
  // A bare name is searched in PATH; one that was not found is exec'd as it is.
  if (f.command.find('/') == std::string::npos) {
    if (f.resolved == f.command) return what + " (not found in " + path + "; " + dir + ")";
    return what + " (resolved to '" + f.resolved + "' in " + path + "; " + dir + ")";
  }
  if (!f.resolved.empty() && f.resolved.front() == '/') return what + " (" + dir + "; " + path + ")";
  // A relative path: the child resolves it after its chdir to the working directory.
  const std::string absolute = (std::filesystem::path(f.directory) / f.resolved).lexically_normal().string();
  return what + " (resolved to '" + absolute + "' against the " + dir + "; " + path + ")";
}

}  // namespace preforkd
