#pragma once
// A test that cannot run here fails: CI runs as root on a VM like the developers' (cgroup2,
// eBPF, 2 CPUs, ::1, prometheus installed), so a missing capability there is a broken
// machine or a broken test, never a pass. A developer without root sets
// PREFORKD_TEST_ALLOW_SKIP=1 to have such a test print a warning and pass instead.

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string_view>

namespace testsupport {

inline bool skips_allowed() {
  const char* allow = std::getenv("PREFORKD_TEST_ALLOW_SKIP");
  return allow != nullptr && std::string_view(allow) == "1";
}

}  // namespace testsupport

// In a test case: `if (cannot) SKIP_OR_FAIL("worker cgroups need root: " << why);`
// Fails the test, or with PREFORKD_TEST_ALLOW_SKIP=1 warns and returns from it.
#define SKIP_OR_FAIL(message)                                                           \
  do {                                                                                  \
    if (!testsupport::skips_allowed())                                                  \
      FAIL("cannot run here: " << message << " (PREFORKD_TEST_ALLOW_SKIP=1 skips it)"); \
    WARN("skipped (PREFORKD_TEST_ALLOW_SKIP=1): " << message);                          \
    return;                                                                             \
  } while (false)
