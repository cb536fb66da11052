#include <preforkd/os/image_exec.hpp>

#include <preforkd/core/exec_failure.hpp>
#include <preforkd/os/children.hpp>
#include <preforkd/os/read_file.hpp>
#include <preforkd/os/sys_error.hpp>

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

extern char** environ;

namespace preforkd::os {

std::string own_executable_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<std::size_t>(n));
  constexpr std::string_view deleted = " (deleted)";
  if (path.ends_with(deleted)) path.resize(path.size() - deleted.size());
  return path;
}

Result<Fd> text_memfd(const char* name, std::string_view text, OnExec on_exec) {
  Fd fd(::memfd_create(name, on_exec == OnExec::close ? MFD_CLOEXEC : 0));
  if (!fd.valid()) return errno_error("create", std::string("memfd ") + name);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("write", std::string("memfd ") + name);
    if (n == 0) return Error{failed_to("write", std::string("memfd ") + name, "no progress")};
    done += static_cast<std::size_t>(n);
  }
  if (::lseek(fd.get(), 0, SEEK_SET) < 0) return errno_error("rewind", std::string("memfd ") + name);
  return fd;
}

Result<std::string> take_handed_text(int fd, std::string_view name, std::size_t max_bytes) {
  const Fd owned(fd);
  (void)::lseek(fd, 0, SEEK_SET);  // ESPIPE on a pipe: read as it is
  return read_fd(fd, name, max_bytes);
}

namespace {

// posix_spawn with stdout and stderr to `out_fd`, stdin from `stdin_fd`, an empty signal
// mask and SIGPIPE at its default (the master ignores it).
Result<pid_t> spawn_captured(const std::vector<std::string>& args, int stdin_fd, int out_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDERR_FILENO);
  posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return errno_error("run", args.front(), rc);
  return pid;
}

// Everything `fd` yields until EOF or `until` (true: the deadline passed first).
bool read_until(int fd, std::chrono::steady_clock::time_point until, std::size_t max_bytes, std::string* out) {
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return true;
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready <= 0) continue;  // EINTR, or the deadline: checked above
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (out->size() < max_bytes) out->append(buf, std::min(static_cast<std::size_t>(n), max_bytes - out->size()));
  }
}

}  // namespace

Result<RunResult> run_to_completion(const std::vector<std::string>& argv, int stdin_fd, Duration deadline,
                                    std::size_t output_bytes) {
  if (argv.empty()) return Error{failed_to("run", "", "no program")};
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno_error("create a pipe for", argv.front());
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  auto pid = spawn_captured(argv, stdin_fd, write_end.get());
  write_end.reset();  // EOF once the child (and whatever it started) closes its copies
  if (!pid) return Error{pid.error()};
  RunResult result;
  const bool timed_out =
      read_until(read_end.get(), std::chrono::steady_clock::now() + deadline, output_bytes, &result.run.output);
  if (timed_out) {
    ::kill(*pid, SIGKILL);
    result.end = RunEnd::timed_out;
  }
  // Never read a status that was not reported: a failed wait is an error.
  auto status = reap(*pid);
  if (!status) return Error{status.error()};
  result.run.status = *status;
  return result;
}

Status ExecAttempt::keep(int fd) {
  if (fd < 0) return Ok{};
  if (::fcntl(fd, F_SETFD, 0) != 0) return errno_error("clear FD_CLOEXEC on", "fd " + std::to_string(fd));
  kept_.push_back(fd);
  return Ok{};
}

void ExecAttempt::block_signals(std::vector<int>* blocked) {
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_BLOCK, &all, &old_mask_);
  blocked_ = true;
  blocked->clear();
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(&old_mask_, sig) == 1) blocked->push_back(sig);
}

Error ExecAttempt::exec(const std::string& binary, const std::vector<std::string>& args) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(binary.c_str(), argv.data());
  return Error{cannot_execute_text(binary, errno)};
}

void ExecAttempt::undo() {
  for (int fd : kept_) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  kept_.clear();
  if (blocked_) ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  blocked_ = false;
}

void send_line_and_close(int fd, std::string_view line, Duration deadline) {
  if (fd < 0) return;
  const Fd owned(fd);
  std::size_t done = 0;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (done < line.size() && std::chrono::steady_clock::now() < until) {
    const ssize_t n = ::send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      (void)::poll(&p, 1, 100);
      continue;
    }
    return;
  }
}

}  // namespace preforkd::os
