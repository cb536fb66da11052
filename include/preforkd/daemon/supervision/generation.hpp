#pragma once
// Builds a Generation (what workers are started from) out of a validated config.

#include <preforkd/core/config.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/daemon/supervision/supervisor.hpp>

#include <memory>

namespace preforkd::daemon {

// Resolves the program (PATH), the user and group (NSS) and the output mode. Errors read
// "worker.user: unknown user 'x'".
[[nodiscard]] Result<std::shared_ptr<Generation>> make_generation(const Config& config, int number);

}  // namespace preforkd::daemon
