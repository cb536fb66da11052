// Reads the interest lists of a process's epoll instances from /proc (see the header).

#include <preforkd/os/epoll_interest.hpp>

#include <preforkd/os/fd.hpp>

#include <charconv>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

// An fdinfo of a large epoll set is long; what does not fit is not looked at.
constexpr std::size_t fdinfo_max = 64 * 1024;

template <class T>
bool parse_number(std::string_view text, T& out, int base) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  return ec == std::errc{} && end == text.data() + text.size() && !text.empty();
}

// The value after `key` ("events:") in `line`: the next word, or "" when absent.
std::string_view value_of(std::string_view line, std::string_view key) {
  std::size_t at = 0;
  // A key starts the line or follows a blank ("ino:" must not match inside "xino:").
  while ((at = line.find(key, at)) != std::string_view::npos) {
    if (at == 0 || line[at - 1] == ' ' || line[at - 1] == '\t') break;
    at += key.size();
  }
  if (at == std::string_view::npos) return {};
  std::size_t i = at + key.size();
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  const std::size_t start = i;
  while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
  return line.substr(start, i - start);
}

bool is_epoll_link(int dir_fd, const char* name) {
  char target[64];
  const ssize_t n = ::readlinkat(dir_fd, name, target, sizeof target - 1);
  return n > 0 && std::string_view(target, static_cast<std::size_t>(n)) == "anon_inode:[eventpoll]";
}

std::string read_small_file(const std::string& path) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::string out;
  if (!f.valid()) return out;
  char buf[4096];
  while (out.size() < fdinfo_max) {
    const ssize_t n = ::read(f.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace

std::vector<EpollEntry> parse_epoll_fdinfo(std::string_view text) {
  std::vector<EpollEntry> out;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.starts_with("tfd:")) continue;
    EpollEntry e;
    if (!parse_number(value_of(line, "tfd:"), e.fd, 10)) continue;
    if (!parse_number(value_of(line, "events:"), e.events, 16)) continue;
    if (!parse_number(value_of(line, "ino:"), e.inode, 16)) continue;
    out.push_back(e);
  }
  return out;
}

std::vector<std::uint64_t> epoll_input_inodes(pid_t pid, std::size_t max_fds) {
  std::vector<std::uint64_t> out;
  const std::string proc = "/proc/" + std::to_string(pid);
  const std::string fd_dir = proc + "/fd";
  DIR* dir = ::opendir(fd_dir.c_str());
  if (dir == nullptr) return out;
  std::size_t seen = 0;
  while (const dirent* d = ::readdir(dir)) {
    if (d->d_name[0] == '.') continue;
    if (++seen > max_fds) break;
    if (!is_epoll_link(::dirfd(dir), d->d_name)) continue;
    for (const EpollEntry& e : parse_epoll_fdinfo(read_small_file(proc + "/fdinfo/" + d->d_name)))
      if ((e.events & EPOLLIN) != 0) out.push_back(e.inode);
  }
  ::closedir(dir);
  return out;
}

}  // namespace preforkd::os
