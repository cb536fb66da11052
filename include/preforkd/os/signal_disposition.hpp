#pragma once
// Ignoring a signal in the kernel (SIG_IGN), for any signal number, those glibc keeps for
// itself (32, 33) included: its sigaction refuses them, so this makes the raw system call.
// What is ignored here survives exec: a worker gets SIG_DFL back from os/spawn_child.cpp.

#include <preforkd/core/result.hpp>

namespace preforkd::os {

// The error names the call and the signal.
[[nodiscard]] Status ignore_signal(int sig);

// The raw call under ignore_signal: `handler` (SIG_DFL or SIG_IGN) for `sig`, with no flags
// and an empty mask. One system call, async-signal-safe: spawn's child resets every
// signal with it between fork and exec. 0, or -1 with errno set.
int set_kernel_disposition(int sig, void (*handler)(int)) noexcept;

}  // namespace preforkd::os
