// Reading a worker's activity from /proc: the parsers, and a real child process blocked
// in accept (waiting), sleeping (busy), stopped (busy), and a parent whose child waits.

#include <preforkd/os/fd.hpp>
#include <preforkd/os/worker_activity.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace preforkd;
using namespace preforkd::os;

namespace {

Fd listening_socket() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  REQUIRE(::listen(fd.get(), 8) == 0);
  return fd;
}

ino_t inode_of(int fd) {
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  return st.st_ino;
}

// A forked child that runs `body` and is SIGKILLed and reaped at the end of the test.
struct ChildProcess {
  pid_t pid = -1;
  template <class F>
  explicit ChildProcess(F body) {
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      body();
      ::_exit(0);
    }
  }
  ~ChildProcess() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

// Polls the probe until it reports `want` (a fresh child needs a moment to block).
bool eventually(ActivityProbe& probe, pid_t pid, const std::vector<ino_t>& sockets, Activity want) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    probe.refresh();
    if (probe.sample(pid, sockets) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace

TEST_CASE("parse_syscall_line tells running and accept and poll and other syscalls apart") {
  using K = SyscallState::Kind;
  CHECK(parse_syscall_line("running\n")->kind == K::running);
  const auto accepting = parse_syscall_line(std::to_string(SYS_accept4) + " 0x3 0x0 0x0 0x80000 0x0 0x0 0x7ffd 0x7f\n");
  REQUIRE(accepting);
  CHECK(accepting->kind == K::accepting);
  CHECK(accepting->fd == 3);
  CHECK(parse_syscall_line(std::to_string(SYS_epoll_pwait) + " 0x4 0x7ffd 0x100 0xffffffff 0x0 0x8 0x7 0x8\n")->kind ==
        K::polling);
  CHECK(parse_syscall_line(std::to_string(SYS_ppoll) + " 0x1 0x1 0x0 0x0 0x8 0x0 0x1 0x2\n")->kind == K::polling);
  CHECK(parse_syscall_line(std::to_string(SYS_read) + " 0x5 0x1 0x2 0x0 0x0 0x0 0x1 0x2\n")->kind == K::other);
  CHECK(parse_syscall_line("-1 0x7ffd 0x7f\n")->kind == K::other);
  CHECK_FALSE(parse_syscall_line(""));
  CHECK_FALSE(parse_syscall_line("garbage"));
  CHECK_FALSE(parse_syscall_line(std::to_string(SYS_accept4) + "\n"));  // no fd
}

TEST_CASE("parse_stat_state reads the letter after the command name - whatever it holds") {
  CHECK(parse_stat_state("123 (sync_worker) S 1 123 123 0") == 'S');
  CHECK(parse_stat_state("123 (a) b) T 1 2") == 'T');
  CHECK(parse_stat_state("123 (x) R") == 'R');
  CHECK(parse_stat_state("nonsense") == 0);
}

TEST_CASE("a process blocked in accept on its slot's socket waits - asleep or stopped it is busy") {
  Fd ours = listening_socket();
  Fd other = listening_socket();
  const std::vector<ino_t> slot{inode_of(ours.get())};
  ActivityProbe probe;

  SECTION("accept on the slot's socket") {
    ChildProcess child([&] { ::accept(ours.get(), nullptr, nullptr); });
    CHECK(eventually(probe, child.pid, slot, Activity::waiting));
    REQUIRE(::kill(child.pid, SIGSTOP) == 0);
    CHECK(eventually(probe, child.pid, slot, Activity::busy));
    REQUIRE(::kill(child.pid, SIGCONT) == 0);
    CHECK(eventually(probe, child.pid, slot, Activity::waiting));
    // Without a refresh, the open /proc files are read again (pread at 0).
    CHECK(probe.sample(child.pid, slot) == Activity::waiting);
    CHECK(probe.sample(child.pid, slot) == Activity::waiting);
  }
  SECTION("accept on some other socket is busy") {
    ChildProcess child([&] { ::accept(other.get(), nullptr, nullptr); });
    CHECK(eventually(probe, child.pid, slot, Activity::busy));
  }
  SECTION("an idle event loop (poll) waits") {
    ChildProcess child([&] { ::poll(nullptr, 0, 60'000); });
    CHECK(eventually(probe, child.pid, slot, Activity::waiting));
  }
  SECTION("sleeping in a request is busy") {
    ChildProcess child([&] { ::sleep(60); });
    CHECK(eventually(probe, child.pid, slot, Activity::busy));
  }
  SECTION("a parent is judged by its children (the leaves of its tree)") {
    ChildProcess parent([&] {
      const pid_t leaf = ::fork();
      if (leaf == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::accept(ours.get(), nullptr, nullptr);
        ::_exit(0);
      }
      ::sleep(60);  // an arbiter: busy-looking, but not a leaf
      ::kill(leaf, SIGKILL);
    });
    CHECK(eventually(probe, parent.pid, slot, Activity::waiting));
  }
  SECTION("a process that is gone is unknown") {
    pid_t gone = 0;
    {
      ChildProcess child([] { ::_exit(0); });
      gone = child.pid;
    }
    probe.refresh();
    CHECK(probe.sample(gone, slot) == Activity::unknown);
  }
}
