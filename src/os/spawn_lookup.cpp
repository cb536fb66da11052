// What spawn looks up before a start: the program's path (PATH) and the credentials of
// the worker's user and group.

#include <preforkd/os/spawn.hpp>

#include <cerrno>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace preforkd::os {

std::string resolve_executable(const std::string& name, const std::string& path_env) {
  if (name.empty() || name.find('/') != std::string::npos) return name;
  std::size_t begin = 0;
  while (begin <= path_env.size()) {
    std::size_t end = path_env.find(':', begin);
    if (end == std::string::npos) end = path_env.size();
    // An empty entry is the current directory. Appended, not assigned: GCC 12 at -O3
    // reports a false -Werror=restrict for `dir = "."`.
    std::string candidate = end == begin ? std::string(".") : path_env.substr(begin, end - begin);
    candidate.append(1, '/').append(name);
    if (::access(candidate.c_str(), X_OK) == 0) {
      struct stat st {};
      if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return candidate;
    }
    begin = end + 1;
  }
  return name;
}

namespace {

std::optional<unsigned long> parse_id(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 10) return std::nullopt;
  return std::stoul(s);
}

}  // namespace

Result<std::optional<Credentials>> resolve_credentials(const std::string& user, const std::string& group) {
  if (user.empty() && group.empty()) return std::optional<Credentials>{};
  Credentials c;
  c.uid = ::getuid();
  c.gid = ::getgid();
  std::string user_name;
  if (!user.empty()) {
    errno = 0;
    const passwd* pw = parse_id(user) ? ::getpwuid(static_cast<uid_t>(*parse_id(user))) : ::getpwnam(user.c_str());
    if (pw == nullptr) {
      if (!parse_id(user)) return Error{"unknown user '" + user + "'"};
      c.uid = static_cast<uid_t>(*parse_id(user));
    } else {
      c.uid = pw->pw_uid;
      c.gid = pw->pw_gid;
      user_name = pw->pw_name;
    }
  }
  if (!group.empty()) {
    const struct group* gr = parse_id(group) ? ::getgrgid(static_cast<gid_t>(*parse_id(group))) : ::getgrnam(group.c_str());
    if (gr == nullptr) {
      if (!parse_id(group)) return Error{"unknown group '" + group + "'"};
      c.gid = static_cast<gid_t>(*parse_id(group));
    } else {
      c.gid = gr->gr_gid;
    }
  }
  if (!user_name.empty()) {
    int count = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    if (::getgrouplist(user_name.c_str(), c.gid, groups.data(), &count) < 0) {
      groups.resize(static_cast<std::size_t>(count));
      ::getgrouplist(user_name.c_str(), c.gid, groups.data(), &count);
    }
    groups.resize(static_cast<std::size_t>(count));
    c.groups = std::move(groups);
  } else {
    c.groups = {c.gid};
  }
  return std::optional<Credentials>{std::move(c)};
}

}  // namespace preforkd::os
