// spawn into a cgroup: the child is created in the cgroup it is given (clone3 with
// CLONE_INTO_CGROUP, sharing the parent's memory until exec) and what it forks is there
// too; in the fork-only mode of a master that has threads it joins by writing cgroup.procs
// before exec. As root with a cgroup2 mount, where it must work: there it fails, not skips.

#include <preforkd/os/cgroup.hpp>
#include <preforkd/os/spawn.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace preforkd;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int wait_exit(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A cgroup of the test's own, below its cgroup on the cgroup2 mount; removed at the end.
class TestCgroup {
 public:
  TestCgroup() {
    const auto mount = os::parse_cgroup2_mount(read_file("/proc/self/mounts"));
    const auto own = os::parse_cgroup2_path(read_file("/proc/self/cgroup"));
    REQUIRE(mount);
    REQUIRE(own);
    static int n = 0;
    path_ = (*own == "/" ? "" : *own) + "/spawn-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
    dir_ = *mount + path_;
    INFO(dir_);
    REQUIRE(::mkdir(dir_.c_str(), 0755) == 0);
  }
  ~TestCgroup() { ::rmdir(dir_.c_str()); }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }  // as in /proc/<pid>/cgroup
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  std::string path_, dir_;
};

// Spawns a shell in `cgroup` that checks that it, and a child of its own, are in it.
void check_spawn_into(const TestCgroup& cgroup) {
  auto dir = os::WorkerCgroup(cgroup.dir()).open_directory();
  REQUIRE(dir);
  os::SpawnSpec spec;
  spec.executable = "/bin/sh";
  // The $(…) is a child of the shell: forked after exec, in the same cgroup.
  spec.argv = {"sh", "-c", "test \"$(grep '^0::' /proc/self/cgroup)\" = \"0::$EXPECT\""};
  spec.env = {"PATH=/usr/bin:/bin", "EXPECT=" + cgroup.path()};
  spec.master_pid = ::getpid();
  spec.output = os::OutputMode::inherit;
  spec.cgroup_fd = dir->get();
  auto spawned = os::spawn(spec);
  REQUIRE(spawned);
  // This kernel (5.7 and later) can start it there: no fall-back said.
  CHECK(spawned->cgroup_fallback.empty());
  CHECK(wait_exit(spawned->pid) == 0);
}

// Not root: no cgroup of its own to make, so nothing that should work here.
bool not_root() {
  if (::geteuid() == 0) return false;
  WARN("skipped: a cgroup of its own needs root here");
  return true;
}

}  // namespace

TEST_CASE("spawn starts the child in its cgroup", "[cgroup]") {
  if (not_root()) return;
  TestCgroup cgroup;
  check_spawn_into(cgroup);
}

TEST_CASE("spawn puts the child in its cgroup also in the fork-only mode", "[cgroup]") {
  if (not_root()) return;
  TestCgroup cgroup;
  // A second thread puts spawn in its fork-only mode (check_single_threaded).
  std::atomic<bool> done{false};
  std::thread other([&] {
    while (!done) std::this_thread::yield();
  });
  CHECK_FALSE(os::check_single_threaded());
  check_spawn_into(cgroup);
  done = true;
  other.join();
  CHECK(os::check_single_threaded());
}
