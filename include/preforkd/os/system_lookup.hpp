#pragma once
// The real SystemLookup for `preforkd --check`: users and groups from NSS, the program
// resolved as the spawn resolves it.

#include <preforkd/core/config.hpp>

namespace preforkd::os {

// `path_env`: the PATH a bare program name is searched in (the master's own at start).
[[nodiscard]] SystemLookup system_lookup(std::string path_env);

}  // namespace preforkd::os
