#pragma once
// A whole file read into memory: /proc and cgroup files report a size of 0 (or a page), so
// they are read to EOF; a bound keeps a file that grows from taking the master's memory.

#include <preforkd/core/result.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace preforkd::os {

// The /proc and cgroup files preforkd reads (stat, status, cgroup, cpu.max, mounts) are a
// few KiB; /proc/self/mounts grows with the mounts, so the bound is generous.
inline constexpr std::size_t proc_file_bytes = 4 * 1024 * 1024;

// The text of `path`, read to EOF. Errors: "failed to open '<path>': <why>",
// "failed to read '<path>': <why>", "failed to read '<path>': larger than N bytes".
[[nodiscard]] Result<std::string> read_file(const std::string& path, std::size_t max_bytes = proc_file_bytes);

// The same for an open fd, from its current offset to EOF; `name` says what it is in the
// error. The fd stays open.
[[nodiscard]] Result<std::string> read_fd(int fd, std::string_view name, std::size_t max_bytes);

}  // namespace preforkd::os
