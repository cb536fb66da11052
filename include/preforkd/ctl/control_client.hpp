#pragma once
// preforkctl's side of the control socket: one request line out, one reply line back.

#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>

#include <string>
#include <string_view>

namespace preforkd::ctl {

// The longest reply read: a status document of 1024 workers is well under 1 MiB.
inline constexpr std::size_t max_reply_bytes = 64 * 1024 * 1024;

// Connects to the socket at `path`, sends `request` and a newline, and returns the first
// line of the reply without its newline. Every error means the daemon could not be talked
// to, and names the path: "cannot connect to '/run/preforkd/app.sock': No such file or
// directory", "no reply from '…' within 10m".
[[nodiscard]] Result<std::string> exchange(const std::string& path, std::string_view request, Duration timeout);

}  // namespace preforkd::ctl
