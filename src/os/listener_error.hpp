#pragma once
// The one format of a listener's errors, shared by the files of ListenerSet
// (listener_set.cpp, listener_socket.cpp, listener_inherited.cpp, listener_steering.cpp):
//   listener 'http': failed to bind '127.0.0.1:80': permission denied

#include <preforkd/core/config.hpp>
#include <preforkd/core/result.hpp>

#include <string>

namespace preforkd::os {

[[nodiscard]] Error failure(const ListenConfig& l, const std::string& what, const std::string& why);
// The same with errno's text as the reason.
[[nodiscard]] Error errno_failure(const ListenConfig& l, const std::string& what, int err);

}  // namespace preforkd::os
