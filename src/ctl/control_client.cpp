#include <preforkd/ctl/control_client.hpp>

#include <preforkd/os/sys_error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

namespace preforkd::ctl {
namespace {

using Clock = std::chrono::steady_clock;

std::string quoted(const std::string& path) { return std::string("'").append(path).append("'"); }

// Milliseconds left for poll(), at least 0.
int remaining_ms(Deadline deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000'000));
}

// Waits until fd is ready for `events` or the deadline passes: false on timeout.
Result<bool> wait_for(int fd, short events, Deadline deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return os::errno_error("poll", "fd " + std::to_string(fd));
  }
}

}  // namespace

Result<ControlClient> ControlClient::connect(const std::string& path, Deadline deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Error{os::failed_to("connect to", path, "the path is too long for a unix socket")};
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  os::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return os::errno_error("create a socket to connect to", path);
  // A unix connect() blocks while the server's backlog is full; SO_SNDTIMEO bounds it.
  const auto ms = std::max<long long>(1, remaining_ms(deadline));
  const timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EAGAIN || errno == EINPROGRESS) {
      return Error{os::failed_to("connect to", path, "the daemon is not accepting connections")};
    }
    return os::errno_error("connect to", path);
  }
  return ControlClient(path, std::move(fd));
}

Result<std::string> ControlClient::exchange(std::string_view request, Deadline deadline, Duration waited) {
  std::string out(request);
  out += '\n';
  std::string_view left = out;
  std::string send_error;
  while (!left.empty()) {
    const ssize_t n = ::send(fd_.get(), left.data(), left.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // A refused client (permissions, too many clients) may be hung up on before it has
      // written; the refusal is already waiting to be read.
      send_error = os::errno_error("send to", path_).message;
      break;
    }
    left.remove_prefix(static_cast<std::size_t>(n));
  }

  std::string reply;
  char buf[16 * 1024];
  while (true) {
    auto ready = wait_for(fd_.get(), POLLIN, deadline);
    if (!ready) return Error{ready.error()};
    if (!*ready) return Error{"no reply from " + quoted(path_) + " within " + format_duration(waited)};
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    // ECONNRESET after the reply can follow a refusal; what was read counts.
    if (n < 0 && reply.empty()) return os::errno_error("read from", path_);
    if (n <= 0) break;
    const auto start = reply.size();
    reply.append(buf, static_cast<std::size_t>(n));
    if (const auto nl = reply.find('\n', start); nl != std::string::npos) {
      pending_ = reply.substr(nl + 1);  // a streaming reply's next lines (logs -f)
      reply.resize(nl);
      return reply;
    }
    if (reply.size() > max_reply_bytes) return Error{"reply from " + quoted(path_) + " is too long"};
  }
  if (reply.empty() && !send_error.empty()) return Error{send_error};
  if (reply.empty()) return Error{quoted(path_) + " closed the connection without a reply"};
  return reply;  // a last line without its newline
}

Result<std::optional<std::string>> ControlClient::next_line() {
  char buf[16 * 1024];
  while (true) {
    if (const auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return std::optional<std::string>(std::move(line));
    }
    if (pending_.size() > max_reply_bytes) return Error{"reply from " + quoted(path_) + " is too long"};
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0 && errno != ECONNRESET) return os::errno_error("read from", path_);
    if (n <= 0) return std::optional<std::string>();
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

Result<bool> ControlClient::wait_closed(Deadline deadline) {
  char buf[4096];
  while (true) {
    auto ready = wait_for(fd_.get(), POLLIN, deadline);
    if (!ready) return Error{ready.error()};
    if (!*ready) return false;
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return true;  // EOF, or a reset: either way the daemon hung up
  }
}

Result<std::string> exchange(const std::string& path, std::string_view request, Duration timeout) {
  const auto deadline = Clock::now() + timeout;
  auto client = ControlClient::connect(path, deadline);
  if (!client) return Error{client.error()};
  return client->exchange(request, deadline, timeout);
}

}  // namespace preforkd::ctl
