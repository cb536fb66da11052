// find_accept_wait: real child processes that wait on a socket by accept(), by epoll, in
// a grandchild, on some other socket, or by poll() (which /proc cannot show).

#include <preforkd/os/accept_wait.hpp>
#include <preforkd/os/fd.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <optional>
#include <string>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

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

// A forked child that runs `body` and is SIGKILLed and reaped at the end of the test;
// its own children die with it (parent-death signal).
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

std::optional<AcceptWait> eventually_found(pid_t pid, const std::vector<ino_t>& sockets) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto w = find_accept_wait(pid, sockets)) return w;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return std::nullopt;
}

// Waits until some thread of `pid` is blocked in syscall `nr` (so "not found" is about
// a process that does wait, not one that has not started yet).
bool blocked_in(pid_t pid, std::vector<long> nrs) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  const std::string path = "/proc/" + std::to_string(pid) + "/syscall";
  while (std::chrono::steady_clock::now() < deadline) {
    Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char buf[256] = {};
    if (f.valid() && ::read(f.get(), buf, sizeof buf - 1) > 0 && buf[0] != 'r' &&
        std::find(nrs.begin(), nrs.end(), std::atol(buf)) != nrs.end())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace

TEST_CASE("a child blocked in accept on the socket is found - on another socket it is not") {
  Fd ours = listening_socket();
  Fd other = listening_socket();
  const std::vector<ino_t> slot{inode_of(ours.get())};

  SECTION("accept on the slot's socket") {
    ChildProcess child([&] { ::accept(ours.get(), nullptr, nullptr); });
    const auto w = eventually_found(child.pid, slot);
    REQUIRE(w);
    CHECK(w->how == AcceptWait::How::accept_call);
    CHECK(w->pid == child.pid);
    CHECK(w->fd == ours.get());
    CHECK(w->describe() == "blocked in accept() on fd " + std::to_string(ours.get()));
  }
  SECTION("accept on another socket") {
    ChildProcess child([&] { ::accept(other.get(), nullptr, nullptr); });
    REQUIRE(blocked_in(child.pid, {SYS_accept, SYS_accept4}));
    CHECK_FALSE(find_accept_wait(child.pid, slot));
  }
  SECTION("in a grandchild: the whole tree counts") {
    ChildProcess child([&] {
      const pid_t grandchild = ::fork();
      if (grandchild == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::accept(ours.get(), nullptr, nullptr);
        ::_exit(0);
      }
      ::pause();
    });
    const auto w = eventually_found(child.pid, slot);
    REQUIRE(w);
    CHECK(w->how == AcceptWait::How::accept_call);
    CHECK(w->pid != child.pid);
  }
  SECTION("no sockets, no process: nothing") {
    CHECK_FALSE(find_accept_wait(::getpid(), {}));
    CHECK_FALSE(find_accept_wait(-1, slot));
  }
}

TEST_CASE("a child with the socket in an epoll set is found - one in poll() is not") {
  Fd ours = listening_socket();
  const std::vector<ino_t> slot{inode_of(ours.get())};

  SECTION("epoll") {
    ChildProcess child([&] {
      const int ep = ::epoll_create1(EPOLL_CLOEXEC);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, ours.get(), &ev);
      ::epoll_wait(ep, &ev, 1, 60'000);
    });
    const auto w = eventually_found(child.pid, slot);
    REQUIRE(w);
    CHECK(w->how == AcceptWait::How::epoll_set);
    CHECK(w->describe() == "its socket is in an epoll set");
  }
  SECTION("poll: documented as unseen") {
    ChildProcess child([&] {
      pollfd p{ours.get(), POLLIN, 0};
      ::poll(&p, 1, 60'000);
    });
#ifdef SYS_poll
    REQUIRE(blocked_in(child.pid, {SYS_poll, SYS_ppoll}));
#else
    REQUIRE(blocked_in(child.pid, {SYS_ppoll}));
#endif
    CHECK_FALSE(find_accept_wait(child.pid, slot));
  }
}

TEST_CASE("can_look_into: its own process and a process that is gone are no problem") {
  CHECK(preforkd::os::can_look_into(::getpid()));
  // A pid above the kernel's pid_max limit cannot exist.
  CHECK(preforkd::os::can_look_into(4194305));
}
