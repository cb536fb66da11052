#include <preforkd/os/read_file.hpp>

#include <preforkd/os/fd.hpp>
#include <preforkd/os/sys_error.hpp>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace preforkd::os {

Result<std::string> read_fd(int fd, std::string_view name, std::size_t max_bytes) {
  std::string text;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read", name);
    if (n == 0) return text;
    if (text.size() + static_cast<std::size_t>(n) > max_bytes)
      return Error{failed_to("read", name, "larger than " + std::to_string(max_bytes) + " bytes")};
    text.append(buf, static_cast<std::size_t>(n));
  }
}

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open", path);
  return read_fd(fd.get(), path, max_bytes);
}

}  // namespace preforkd::os
