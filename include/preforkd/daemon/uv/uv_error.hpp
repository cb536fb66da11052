#pragma once
// libuv's failures in the project's one error format (os/sys_error.hpp):
//   failed to <call> '<what>': <why>
// <call> is the libuv function (as nginx names the failing call), <what> the handle's use
// ("timer", "output pipe", "signal 1"), <why> libuv's text for the code.

#include <uv.h>

#include <preforkd/core/result.hpp>
#include <preforkd/os/sys_error.hpp>
#include <string>
#include <string_view>

namespace preforkd::daemon {

[[nodiscard]] inline std::string uv_failure(std::string_view call, std::string_view what, int rc) {
  return os::failed_to(call, what, os::sentence_tail(uv_strerror(rc)));
}

[[nodiscard]] inline Error uv_error(std::string_view call, std::string_view what, int rc) {
  return Error{uv_failure(call, what, rc)};
}

}  // namespace preforkd::daemon
