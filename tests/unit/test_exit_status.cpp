// Exit-status text as it appears in the log.

#include <preforkd/core/exit_status.hpp>

#include <catch2/catch.hpp>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace preforkd;

TEST_CASE("exit status text") {
  CHECK(describe(ExitStatus::exited_with(1)) == "exited with status 1");
  CHECK(describe(ExitStatus::exited_with(0)) == "exited with status 0");
  CHECK(describe(ExitStatus::killed_by(11, true)) == "exited on signal 11 (core dumped)");
  CHECK(describe(ExitStatus::killed_by(9)) == "exited on signal 9");
  CHECK(ExitStatus::killed_by(9).as_shell_code() == 137);
  CHECK(ExitStatus::exited_with(3).as_shell_code() == 3);
  CHECK(signal_name(SIGTERM) == "SIGTERM");
  CHECK(signal_name(SIGKILL) == "SIGKILL");
}

TEST_CASE("from a real wait status") {
  const pid_t exits = fork();
  if (exits == 0) _exit(7);
  int status = 0;
  REQUIRE(waitpid(exits, &status, 0) == exits);
  CHECK(ExitStatus::from_wait_status(status) == ExitStatus::exited_with(7));

  const pid_t killed = fork();
  if (killed == 0) {
    pause();
    _exit(0);
  }
  kill(killed, SIGKILL);
  REQUIRE(waitpid(killed, &status, 0) == killed);
  CHECK(ExitStatus::from_wait_status(status) == ExitStatus::killed_by(SIGKILL));
}
