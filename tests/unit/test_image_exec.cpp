// os/image_exec: the syscalls of the in-place upgrade. A check run whose wait fails is an
// error, never a success; the exec's fds and signal mask come back when it fails.

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <preforkd/os/image_exec.hpp>
#include <preforkd/os/read_file.hpp>

using namespace preforkd;
using namespace std::chrono_literals;

namespace {

// SIGCHLD ignored while it lives: the kernel reaps this process's children itself, so a
// waitpid for one of them fails with ECHILD, as when someone else has reaped it.
class ChildrenReapedElsewhere {
 public:
  ChildrenReapedElsewhere() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    ok_ = ::sigaction(SIGCHLD, &ignore, &saved_) == 0;
  }
  ~ChildrenReapedElsewhere() { ::sigaction(SIGCHLD, &saved_, nullptr); }
  ChildrenReapedElsewhere(const ChildrenReapedElsewhere&) = delete;
  ChildrenReapedElsewhere& operator=(const ChildrenReapedElsewhere&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  struct sigaction saved_ {};
  bool ok_ = false;
};

os::Fd empty_stdin() {
  auto fd = os::text_memfd("test-stdin", "", os::OnExec::close);
  REQUIRE(fd);
  return std::move(*fd);
}

}  // namespace

TEST_CASE("image exec: a run captures the output and the exit status and reads its stdin") {
  auto in = os::text_memfd("test-stdin", "from stdin\n", os::OnExec::close);
  REQUIRE(in);
  const auto ran = os::run_to_completion({"/bin/sh", "-c", "cat; echo to stderr >&2; exit 3"}, in->get(), 20s, 1024);
  REQUIRE(ran);
  CHECK(ran->end == os::RunEnd::exited);
  CHECK(ran->run.status == ExitStatus::exited_with(3));
  CHECK(ran->run.output == "from stdin\nto stderr\n");
}

TEST_CASE("image exec: the output is cut at its bound") {
  const os::Fd in = empty_stdin();
  const auto ran = os::run_to_completion({"/bin/sh", "-c", "echo 0123456789"}, in.get(), 20s, 4);
  REQUIRE(ran);
  CHECK(ran->run.output == "0123");
  CHECK(ran->run.status.success());
}

TEST_CASE("image exec: a run past its deadline is killed and reaped") {
  const os::Fd in = empty_stdin();
  const auto started = std::chrono::steady_clock::now();
  const auto ran = os::run_to_completion({"/bin/sh", "-c", "exec sleep 30"}, in.get(), 200ms, 1024);
  REQUIRE(ran);
  CHECK(ran->end == os::RunEnd::timed_out);
  CHECK(ran->run.status == ExitStatus::killed_by(SIGKILL));
  CHECK(std::chrono::steady_clock::now() - started < 20s);
}

TEST_CASE("image exec: a run whose child was reaped elsewhere is an error and never a success") {
  const os::Fd in = empty_stdin();
  const ChildrenReapedElsewhere reaped;
  REQUIRE(reaped.ok());
  const auto ran = os::run_to_completion({"/bin/sh", "-c", "exit 0"}, in.get(), 20s, 1024);
  REQUIRE_FALSE(ran);
  CHECK(ran.error().find("failed to wait for 'pid ") == 0);
  CHECK(ran.error().find("': no child processes") != std::string::npos);
}

TEST_CASE("image exec: a program that cannot be run is an error naming it") {
  const os::Fd in = empty_stdin();
  const auto ran = os::run_to_completion({"/nonexistent/preforkd"}, in.get(), 20s, 1024);
  REQUIRE_FALSE(ran);
  CHECK(ran.error() == "failed to run '/nonexistent/preforkd': no such file or directory");
}

TEST_CASE("image exec: a memfd holds the text from its start and keeps or drops FD_CLOEXEC") {
  auto kept = os::text_memfd("test-state", "{\"state\": 1}", os::OnExec::keep);
  REQUIRE(kept);
  CHECK((::fcntl(kept->get(), F_GETFD) & FD_CLOEXEC) == 0);
  const auto text = os::read_fd(kept->get(), "memfd", 1024);
  REQUIRE(text);
  CHECK(*text == "{\"state\": 1}");
  auto closed = os::text_memfd("test-state", "x", os::OnExec::close);
  REQUIRE(closed);
  CHECK((::fcntl(closed->get(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("image exec: a failed exec says so in the words of a worker's and undoes its changes") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const os::Fd a(fds[0]);
  const os::Fd b(fds[1]);
  sigset_t before;
  ::sigprocmask(SIG_SETMASK, nullptr, &before);
  {
    os::ExecAttempt attempt;
    REQUIRE(attempt.keep(a.get()));
    CHECK((::fcntl(a.get(), F_GETFD) & FD_CLOEXEC) == 0);
    std::vector<int> blocked;
    attempt.block_signals(&blocked);
    const Error failed = attempt.exec("/nonexistent/preforkd", {"/nonexistent/preforkd"});
    CHECK(failed.message == "cannot execute '/nonexistent/preforkd': No such file or directory");
    attempt.undo();
  }
  CHECK((::fcntl(a.get(), F_GETFD) & FD_CLOEXEC) != 0);
  sigset_t after;
  ::sigprocmask(SIG_SETMASK, nullptr, &after);
  CHECK(sigismember(&after, SIGTERM) == sigismember(&before, SIGTERM));
  CHECK(sigismember(&after, SIGCHLD) == sigismember(&before, SIGCHLD));
}

TEST_CASE("image exec: the reply line reaches the client and its fd is closed") {
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) == 0);
  const os::Fd client(pair[1]);
  os::send_line_and_close(pair[0], "{\"ok\": true}\n", 2s);
  CHECK(::fcntl(pair[0], F_GETFD) == -1);
  const auto text = os::read_fd(client.get(), "client", 1024);  // EOF: the other end is closed
  REQUIRE(text);
  CHECK(*text == "{\"ok\": true}\n");
}

TEST_CASE("image exec: the handed memfd is read from its start and closed") {
  auto memfd = os::text_memfd("test-state", "the whole state", os::OnExec::close);
  REQUIRE(memfd);
  char first[4];
  REQUIRE(::read(memfd->get(), first, sizeof first) == 4);  // the offset moved on
  const int fd = memfd->release();
  const auto text = os::take_handed_text(fd, "--resume-from-fd", 1024);
  REQUIRE(text);
  CHECK(*text == "the whole state");
  CHECK(::fcntl(fd, F_GETFD) == -1);
  const auto too_big = os::take_handed_text(
      os::text_memfd("test-state", "the whole state", os::OnExec::close)->release(), "--resume-from-fd 5", 4);
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error() == "failed to read '--resume-from-fd 5': larger than 4 bytes");
}
