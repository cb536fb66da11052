#pragma once
// Hard limits shared by the config, the control protocol, the supervisor and spawn: one
// home for each, so they cannot drift apart.

#include <cstddef>

namespace preforkd {

// The most workers one master runs: worker.count, `scale` and restart slot numbers.
inline constexpr int max_workers = 1024;

// The most listening sockets a worker is handed (fds 3 .. 3+N-1); spawn sizes its
// fd table from it.
inline constexpr std::size_t max_listen_fds = 1024;

}  // namespace preforkd
