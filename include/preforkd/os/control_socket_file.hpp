#pragma once
// The control socket's file, made safely: missing parent directories are created (0755, or
// 0750 and owned by the control group), an existing socket is replaced only when nobody
// answers on it, anything else at the path is left alone, and the socket is bound under
// umask 0177 (born 0600: nobody else can connect before its mode and group are set).

#include <preforkd/core/result.hpp>
#include <preforkd/os/fd.hpp>

#include <optional>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>

namespace preforkd::os {

struct ControlSocketFile {
  Fd fd;           // bound, non-blocking, close-on-exec; not yet listening
  dev_t dev = 0;   // the socket file, so that only this one is removed at the end
  ino_t ino = 0;
};

// Binds the control socket at the absolute `path` and gives it `mode` and `group`. An
// error names the path and why: "control socket '/run/app.sock' is in use by a running
// preforkd".
[[nodiscard]] Result<ControlSocketFile> bind_control_socket(const std::string& path, mode_t mode,
                                                            std::optional<gid_t> group);

}  // namespace preforkd::os
