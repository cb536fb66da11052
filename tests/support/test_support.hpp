#pragma once
// What the behaviour tests and the benchmarks both need: a temporary directory and a
// free TCP port on 127.0.0.1.

#include <string>

namespace testsupport {

// A directory under /tmp, removed with everything in it when it goes out of scope.
class TempDir {
 public:
  // `prefix`: the start of its name, e.g. "preforkd-test" → /tmp/preforkd-test-XXXXXX.
  explicit TempDir(const std::string& prefix = "preforkd-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes the file atomically (a rename), so a reload never reads half of it.
  void write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago, chosen at random below the
// kernel's range for client ports, so that neither the many client connections of a
// load test nor a second copy of the suite is likely to take it meanwhile.
int free_port();

}  // namespace testsupport
