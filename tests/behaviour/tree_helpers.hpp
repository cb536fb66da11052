#pragma once
// Helpers for the worker-tree tests: the tree_worker fixture's answer, and whether this
// machine lets preforkd make worker cgroups (root and a writable cgroup2 hierarchy).

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "harness.hpp"

namespace bt {

// "tree worker <slot> (pid <pid>) children <pid> …"
struct TreeHello {
  int slot = -1;
  pid_t pid = -1;
  std::vector<pid_t> children;
};
// Asks GET / until a tree_worker answers (or the default deadline).
std::optional<TreeHello> tree_hello(int port, Ms timeout = 10s);

// Why worker cgroups cannot be tested here ("" when they can): not root, or no writable
// cgroup2 mount.
std::string cgroups_unavailable();

// A config running tree_worker with `env` (TOML inline-table entries such as
// `TREE_BUSY_CHILD = "1"`) and `worker_cgroups` ("auto" or "off").
std::string tree_config(int port, const std::string& env, const std::string& worker_cgroups, int count = 1);

}  // namespace bt
