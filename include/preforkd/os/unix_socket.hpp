#pragma once
// The stale-socket probe shared by unix listeners and the control socket: a socket file
// whose server is gone (connecting is refused) may be replaced; a live server's socket,
// or a file that is not a socket, never is.

#include <preforkd/core/result.hpp>

#include <string>

namespace preforkd::os {

enum class SocketFile {
  absent,        // nothing at the path (or a stale socket that was just removed)
  live,          // a server accepts on it (or its backlog is full)
  not_a_socket,  // a file of another kind: left alone
};

// Looks at `path` and removes it if it is a stale socket. An error says what failed:
// "failed to inspect '/run/app.sock': permission denied".
[[nodiscard]] Result<SocketFile> clear_stale_unix_socket(const std::string& path);

}  // namespace preforkd::os
