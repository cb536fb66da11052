// In-place upgrade: preflight of the new binary, the memfd with the state, the fds and the
// signal mask across the exec. Master::upgrade (master_upgrade.cpp) puts them together.

#include <preforkd/daemon/upgrade/upgrade.hpp>

#include <preforkd/core/exit_status.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace preforkd::daemon {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// The last non-empty line of a program's output, for an error message.
std::string last_line(const std::string& output) {
  std::string_view rest(output);
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r')) rest.remove_suffix(1);
  const auto nl = rest.rfind('\n');
  std::string line(nl == std::string_view::npos ? rest : rest.substr(nl + 1));
  if (line.size() > 300) line = line.substr(0, 300) + "...";
  return line;
}

}  // namespace

std::string own_executable_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<std::size_t>(n));
  constexpr std::string_view deleted = " (deleted)";
  if (path.ends_with(deleted)) path.resize(path.size() - deleted.size());
  return path;
}

namespace {

// The state document in a memfd (close-on-exec here; the child gets it as its stdin).
Result<int> state_memfd(const MasterState& state) {
  const int fd = ::memfd_create("preforkd-preflight-state", MFD_CLOEXEC);
  if (fd < 0) return Error{"preflight: memfd_create: " + errno_text(errno)};
  const std::string text = encode_master_state(state);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      return Error{"preflight: writing the state to a memfd: " + errno_text(err)};
    }
    done += static_cast<std::size_t>(n);
  }
  if (::lseek(fd, 0, SEEK_SET) < 0) {
    const int err = errno;
    ::close(fd);
    return Error{"preflight: lseek on the state memfd: " + errno_text(err)};
  }
  return fd;
}

}  // namespace

Result<ExitStatus> wait_for_child(pid_t pid) {
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno == EINTR) continue;
    return Error{"waitpid " + std::to_string(pid) + ": " + errno_text(errno)};
  }
  return ExitStatus::from_wait_status(wstatus);
}

Result<Preflight> run_preflight(const std::string& binary, const std::string& config, const MasterState& state,
                                Duration deadline) {
  auto memfd = state_memfd(state);
  if (!memfd) return Error{memfd.error()};
  const int state_fd = *memfd;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(state_fd);
    return Error{"preflight: pipe2: " + errno_text(err)};
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_adddup2(&actions, state_fd, STDIN_FILENO);
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
  std::vector<std::string> args = {binary, "--config", config, "--check", "--state-format", check_state_option, "0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  ::close(state_fd);
  if (rc != 0) {
    ::close(fds[0]);
    return Error{"preflight: cannot run '" + binary + "': " + errno_text(rc)};
  }
  // Read everything it says until EOF or the deadline; then it must have exited.
  std::string output;
  const auto until = std::chrono::steady_clock::now() + deadline;
  bool timed_out = false;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (output.size() < 64 * 1024) output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  // Never read a status that was not reported: a failed wait refuses the upgrade.
  const auto waited = wait_for_child(pid);
  if (timed_out) return Error{"preflight: '" + binary + "' did not finish its check within " + format_duration(deadline)};
  if (!waited) return Error{"preflight: cannot learn how '" + binary + "' ended its check: " + waited.error()};
  const ExitStatus status = *waited;
  if (!status.success()) {
    std::string why = "preflight: '" + binary + "' " + describe(status);
    if (const std::string line = last_line(output); !line.empty()) why += ": " + line;
    return Error{why};
  }
  Preflight result;
  result.formats = parse_state_formats(output);
  std::string_view rest(output);
  constexpr std::string_view key = "version: ";
  if (const auto at = rest.find(key); at != std::string_view::npos) {
    rest.remove_prefix(at + key.size());
    result.version = std::string(rest.substr(0, rest.find('\n')));
  }
  if (std::ranges::find(result.formats, master_state_format) == result.formats.end()) {
    std::string read;
    for (int f : result.formats) read.append(read.empty() ? "" : ",").append(std::to_string(f));
    return Error{"preflight: '" + binary + "' does not read state format " + std::to_string(master_state_format) +
                 " (it reads " + (read.empty() ? std::string("none") : read) + ")"};
  }
  return result;
}

Result<int> ExecAttempt::write_state(const MasterState& state) {
  // No MFD_CLOEXEC: this one fd is meant to survive the exec.
  memfd_ = ::memfd_create("preforkd-upgrade-state", 0);
  if (memfd_ < 0) return Error{"memfd_create: " + errno_text(errno)};
  const std::string text = encode_master_state(state);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(memfd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error{"writing the state to a memfd: " + errno_text(errno)};
    done += static_cast<std::size_t>(n);
  }
  if (::lseek(memfd_, 0, SEEK_SET) < 0) return Error{"lseek on the state memfd: " + errno_text(errno)};
  return memfd_;
}

Status ExecAttempt::keep(int fd) {
  if (fd < 0) return Ok{};
  if (::fcntl(fd, F_SETFD, 0) != 0) return Error{"fd " + std::to_string(fd) + ": F_SETFD: " + errno_text(errno)};
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
  return Error{"cannot execute '" + binary + "': " + errno_text(errno)};
}

void ExecAttempt::undo() {
  for (int fd : kept_) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  kept_.clear();
  if (memfd_ >= 0) ::close(memfd_);
  memfd_ = -1;
  if (blocked_) ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  blocked_ = false;
}

Result<MasterState> read_state(int fd) {
  std::string text;
  char buf[65536];
  ::lseek(fd, 0, SEEK_SET);
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Error{"--resume-from-fd " + std::to_string(fd) + ": " + errno_text(err)};
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return decode_master_state(text);
}

void answer_upgrade_client(int fd, const std::string& line) {
  if (fd < 0) return;
  // The fd came from the old image's event loop: non-blocking. A short deadline: a client
  // that does not read its one reply line is not worth waiting for.
  std::size_t done = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
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
    break;
  }
  ::close(fd);
}

}  // namespace preforkd::daemon
