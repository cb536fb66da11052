#include <preforkd/os/spawn.hpp>
#include <preforkd/os/sys_error.hpp>
#include <preforkd/os/system_lookup.hpp>

#include <cerrno>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace preforkd::os {

SystemLookup system_lookup(std::string path_env) {
  SystemLookup lookup;
  lookup.user_exists = [](const std::string& name) { return ::getpwnam(name.c_str()) != nullptr; };
  lookup.group_exists = [](const std::string& name) { return ::getgrnam(name.c_str()) != nullptr; };
  lookup.program_problem = [path_env = std::move(path_env)](const std::string& program,
                                                            const std::string& directory) -> std::optional<std::string> {
    const bool bare = program.find('/') == std::string::npos;
    std::string path = resolve_executable(program, path_env);
    if (bare && path == program) return "not found in PATH (" + path_env + ")";
    // A relative path is relative to the worker's directory, where it is started.
    if (path.front() != '/' && !directory.empty()) path = directory + "/" + path;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "'" + path + "': " + errno_text(errno);
    if (!S_ISREG(st.st_mode)) return "'" + path + "' is not a regular file";
    if (::access(path.c_str(), X_OK) != 0) return "'" + path + "' is not executable: " + errno_text(errno);
    return std::nullopt;
  };
  return lookup;
}

}  // namespace preforkd::os
