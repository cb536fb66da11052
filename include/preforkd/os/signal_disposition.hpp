#pragma once
// Ignoring a signal in the kernel (SIG_IGN), for any signal number, those glibc keeps for
// itself (32, 33) included: its sigaction refuses them, so this makes the raw system call.
// What is ignored here survives exec: a worker gets SIG_DFL back from os/spawn.cpp.

#include <preforkd/core/result.hpp>

namespace preforkd::os {

// The error names the call and the signal.
[[nodiscard]] Status ignore_signal(int sig);

}  // namespace preforkd::os
