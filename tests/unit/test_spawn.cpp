// spawn: the socket-activation hand-over, seen from inside a real child (/bin/sh).

#include <preforkd/os/spawn.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace preforkd;

namespace {

int wait_exit(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

os::SpawnSpec shell(const std::string& script, std::vector<int> fds = {}) {
  os::SpawnSpec spec;
  spec.executable = "/bin/sh";
  spec.argv = {"sh", "-c", script};
  spec.env = {"PATH=/usr/bin:/bin", "LISTEN_FDS=" + std::to_string(fds.size())};
  spec.listen_fds = std::move(fds);
  spec.master_pid = ::getpid();
  spec.output = os::OutputMode::inherit;
  return spec;
}

}  // namespace

TEST_CASE("the child gets its sockets at fds 3.. and LISTEN_PID is its own pid") {
  int pair_a[2], pair_b[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair_a) == 0);
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair_b) == 0);
  auto link = [](int fd) {
    struct stat st {};
    ::fstat(fd, &st);
    return "socket:[" + std::to_string(st.st_ino) + "]";
  };
  // fd 3 gets pair_b[0] and fd 4 pair_a[0]: out of order, so the hand-over must not
  // clobber one socket with another.
  os::SpawnSpec spec = shell(
      "test \"$LISTEN_PID\" = \"$$\" && test ! -e /proc/self/fd/5 && "
      "test \"$(readlink /proc/self/fd/3)\" = \"$EXPECT3\" && test \"$(readlink /proc/self/fd/4)\" = \"$EXPECT4\"",
      {pair_b[0], pair_a[0]});
  spec.env.push_back("EXPECT3=" + link(pair_b[0]));
  spec.env.push_back("EXPECT4=" + link(pair_a[0]));
  auto spawned = os::spawn(spec);
  REQUIRE(spawned);
  CHECK(wait_exit(spawned->pid) == 0);
  for (int fd : {pair_a[0], pair_a[1], pair_b[0], pair_b[1]}) ::close(fd);
}

TEST_CASE("fd 3 keeps its socket even when the source already is fd 3") {
  // FACTS.md: dup2(3, 3) leaves FD_CLOEXEC set; spawn must hand it over anyway.
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  int moved = -1;
  if (sv[0] != 3 && sv[1] != 3) {
    // Park whatever is at fd 3 (if anything) and put our socket there.
    moved = ::fcntl(3, F_DUPFD_CLOEXEC, 10);
    REQUIRE(::dup3(sv[0], 3, O_CLOEXEC) == 3);
  }
  const int three = 3;
  auto spawned = os::spawn(shell("test -S /proc/self/fd/3", {three}));
  REQUIRE(spawned);
  CHECK(wait_exit(spawned->pid) == 0);
  if (moved >= 0) {
    ::dup3(moved, 3, O_CLOEXEC);
    ::close(moved);
  }
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("stdin is /dev/null - the signal mask is empty and dispositions are defaults") {
  // Block and ignore something in the parent: the child must not inherit either.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &set, &old);
  auto previous = ::signal(SIGUSR2, SIG_IGN);
  auto spawned = os::spawn(shell(
      "test \"$(readlink /proc/self/fd/0)\" = /dev/null && "
      "grep -q '^SigBlk:\\s*0000000000000000' /proc/self/status && "
      "grep -q '^SigIgn:\\s*0000000000000000' /proc/self/status"));
  ::signal(SIGUSR2, previous);
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  REQUIRE(spawned);
  CHECK(wait_exit(spawned->pid) == 0);
}

TEST_CASE("the child is in its own process group with a parent-death signal") {
  auto spawned = os::spawn(shell(
      "test \"$(cut -d' ' -f5 /proc/$$/stat)\" = \"$$\""));
  REQUIRE(spawned);
  CHECK(wait_exit(spawned->pid) == 0);
}

TEST_CASE("an exec failure is reported with its errno when spawn returns and exits 127 or 126") {
  os::SpawnSpec missing = shell("");
  missing.executable = "/nonexistent/program";
  auto a = os::spawn(missing);
  REQUIRE(a);
  CHECK(a->exec_errno == ENOENT);  // before the child is reaped
  CHECK(wait_exit(a->pid) == 127);

  char path[] = "/tmp/preforkd-noexec-XXXXXX";
  const int fd = ::mkstemp(path);  // mode 0600: no execute bit for anyone, root included
  REQUIRE(fd >= 0);
  ::close(fd);
  os::SpawnSpec not_exec = shell("");
  not_exec.executable = path;
  auto b = os::spawn(not_exec);
  REQUIRE(b);
  CHECK(b->exec_errno == EACCES);  // before the child is reaped
  CHECK(wait_exit(b->pid) == 126);
  ::unlink(path);

  auto ok = os::spawn(shell("exit 0"));
  REQUIRE(ok);
  CHECK(ok->exec_errno == 0);  // before the child is reaped
  CHECK(wait_exit(ok->pid) == 0);
}

TEST_CASE("captured output arrives on the pipes") {
  os::SpawnSpec spec = shell("echo out; echo err >&2");
  spec.output = os::OutputMode::capture;
  auto spawned = os::spawn(spec);
  REQUIRE(spawned);
  CHECK(wait_exit(spawned->pid) == 0);
  char buf[64] = {};
  CHECK(::read(spawned->stdout_pipe.get(), buf, sizeof buf) == 4);
  CHECK(std::string(buf, 4) == "out\n");
  CHECK(::read(spawned->stderr_pipe.get(), buf, sizeof buf) == 4);
  CHECK(std::string(buf, 4) == "err\n");
}

TEST_CASE("a spawn that runs out of file descriptors says so - apart from other failures") {
  // In a child of the test, which may use up its own fds.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    struct rlimit lim {};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = 64;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(3);
    while (::open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0) {
    }
    auto spawned = os::spawn(shell("exit 0"));
    if (spawned) _exit(4);
    _exit(spawned.failure().fd_shortage ? 0 : 5);
  }
  CHECK(wait_exit(pid) == 0);
  // Other failures are no shortage.
  os::SpawnSpec bad = shell("exit 0");
  bad.listen_fds.assign(2000, 0);
  auto refused = os::spawn(bad);
  REQUIRE_FALSE(refused);
  CHECK_FALSE(refused.failure().fd_shortage);
}

TEST_CASE("the master's clone(CLONE_VM) start is checked to run in one thread") {
  // The unit test runner has one thread here, as the master does.
  CHECK(os::check_single_threaded());
}

TEST_CASE("a spawn short of fds says what it failed to do - for which program - and why") {
  const int next_fd = ::dup(0);
  REQUIRE(next_fd >= 0);
  ::close(next_fd);
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  rlimit tight = old;
  tight.rlim_cur = static_cast<rlim_t>(next_fd) + 1;  // /dev/null opens, the first pipe cannot
  os::SpawnSpec spec = shell("exit 0");
  spec.output = os::OutputMode::capture;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
  const auto spawned = os::spawn(spec);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
  REQUIRE_FALSE(spawned);
  CHECK(spawned.error() == "failed to create a pipe for '/bin/sh': too many open files");
  CHECK(spawned.failure().fd_shortage);
}
