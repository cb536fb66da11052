#pragma once
// preforkctl's side of the control socket: one request line out, one reply line back, and
// for `stop`, waiting for the daemon to hang up.

#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>
#include <preforkd/os/fd.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace preforkd::ctl {

// The longest reply read: a status document of 1024 workers is well under 1 MiB.
inline constexpr std::size_t max_reply_bytes = 64 * 1024 * 1024;

using Deadline = std::chrono::steady_clock::time_point;

// One connection to the control socket. Every error means the daemon could not be talked
// to, and names the path: "failed to connect to '/run/preforkd/app.sock': no such file or
// directory" (os/sys_error's format), "no reply from '…' within 10m".
class ControlClient {
 public:
  // Connects to the socket at `path`; a daemon whose backlog is full fails it at `deadline`.
  [[nodiscard]] static Result<ControlClient> connect(const std::string& path, Deadline deadline);

  // Sends `request` and a newline, and returns the first line of the reply without its
  // newline. `waited` names the wait in a timeout message ("within 10m").
  [[nodiscard]] Result<std::string> exchange(std::string_view request, Deadline deadline, Duration waited);

  // After exchange(), for a streaming reply (logs -f): the next line, without its newline,
  // however long it takes; nullopt once the daemon has closed the connection.
  [[nodiscard]] Result<std::optional<std::string>> next_line();

  // After the reply: reads and discards until the daemon closes the connection. False when
  // the deadline passed first.
  [[nodiscard]] Result<bool> wait_closed(Deadline deadline);

 private:
  ControlClient(std::string path, os::Fd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  os::Fd fd_;
  std::string pending_;  // read after the reply's line
};

// One request on a fresh connection, within `timeout`: the reply's first line.
[[nodiscard]] Result<std::string> exchange(const std::string& path, std::string_view request, Duration timeout);

}  // namespace preforkd::ctl
