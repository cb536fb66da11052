// A process tree from /proc: descendants, their memory and CPU, and killing the ones that
// are still the same processes.

#include <preforkd/os/proc_stats.hpp>
#include <preforkd/os/process_tree.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace preforkd::os;

namespace {

// A child that forks a grandchild; both sleep until killed. Returns {child, grandchild}.
std::pair<pid_t, pid_t> fork_two_levels() {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const pid_t grandchild = ::fork();
    if (grandchild == 0) {
      for (;;) ::pause();
    }
    [[maybe_unused]] ssize_t w = ::write(fds[1], &grandchild, sizeof grandchild);
    for (;;) ::pause();
  }
  pid_t grandchild = -1;
  REQUIRE(::read(fds[0], &grandchild, sizeof grandchild) == sizeof grandchild);
  ::close(fds[0]);
  ::close(fds[1]);
  return {child, grandchild};
}

}  // namespace

TEST_CASE("parse_smaps_rollup: RSS and PSS and private (USS) in bytes", "[process_tree]") {
  const std::string text =
      "55d0c0a4c000-7ffd2b7fe000 ---p 00000000 00:00 0                          [rollup]\n"
      "Rss:                3768 kB\n"
      "Pss:                1032 kB\n"
      "Pss_Dirty:           640 kB\n"
      "Pss_Anon:            620 kB\n"
      "Shared_Clean:       2728 kB\n"
      "Shared_Dirty:          0 kB\n"
      "Private_Clean:       400 kB\n"
      "Private_Dirty:       640 kB\n"
      "Referenced:         3768 kB\n"
      "Anonymous:           640 kB\n"
      "Swap:                  0 kB\n"
      "SwapPss:               0 kB\n";
  const auto r = parse_smaps_rollup(text);
  REQUIRE(r);
  CHECK(r->rss == 3768u * 1024);
  CHECK(r->pss == 1032u * 1024);
  CHECK(r->uss == (400u + 640u) * 1024);
  // A zombie's file is empty: zeroes.
  CHECK(parse_smaps_rollup("") == SmapsRollup{});
  CHECK_FALSE(parse_smaps_rollup("Rss: lots\n").has_value());
}

TEST_CASE("parse_stat_start_time reads field 22 past any command name", "[process_tree]") {
  const std::string tail = " S 1 1 1 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 98765 1000 200";
  CHECK(parse_stat_start_time("42 (a) b)" + tail) == 98765u);
  CHECK_FALSE(parse_stat_start_time("42 (a) S 1").has_value());
}

TEST_CASE("descendants and tree_memory and kill_processes on a real two-level tree", "[process_tree]") {
  const auto [child, grandchild] = fork_two_levels();
  const auto found = descendants(::getpid());
  CHECK(std::find(found.begin(), found.end(), child) != found.end());
  CHECK(std::find(found.begin(), found.end(), grandchild) != found.end());
  CHECK(descendants(child) == std::vector<pid_t>{grandchild});

  const TreeUsage tree = tree_memory(child);
  CHECK(tree.processes == 2);
  CHECK(tree.rss > 0);
  CHECK(tree.pss > 0);
  CHECK(tree.pss <= tree.rss);
  CHECK(tree.uss <= tree.pss);

  auto snapshot = snapshot_descendants(child);
  REQUIRE(snapshot.size() == 1);
  // A wrong start time is another process: left alone.
  auto stale = snapshot;
  stale[0].start_time += 1;
  CHECK(kill_processes(stale) == 0);
  CHECK(kill_processes(snapshot) == 1);
  ::kill(child, SIGKILL);
  int status = 0;
  CHECK(::waitpid(child, &status, 0) == child);
}
