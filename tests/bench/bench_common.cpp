#include "bench_common.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

extern char** environ;

namespace bench {

namespace {

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Milliseconds left until `deadline_ns` (CLOCK_MONOTONIC), at least 0.
int ms_left(std::int64_t deadline_ns) {
  const std::int64_t left = deadline_ns - mono_ns();
  return left <= 0 ? 0 : static_cast<int>((left + 999'999) / 1'000'000);
}

bool wait_fd(int fd, short events, std::int64_t deadline_ns) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, ms_left(deadline_ns));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

std::int64_t deadline_after(Ms d) {
  return mono_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

std::string toml_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

// ---------------------------------------------------------------- paths

std::string preforkd_bin() {
  return PREFORKD_BIN;
}
std::string demo_bin() {
  return DEMO_BIN;
}
std::string bench_worker_bin() {
  return std::string(FIXTURE_DIR) + "/bench_worker";
}
std::string sync_worker_bin() {
  return std::string(FIXTURE_DIR) + "/sync_worker";
}

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// ---------------------------------------------------------------- time and numbers

std::int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const auto n = static_cast<double>(values.size());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

void report(const std::string& name, const std::string& value, const std::string& target) {
  std::string dots = " ";
  if (name.size() < 46) dots += std::string(46 - name.size(), '.') + " ";
  if (target.empty())
    std::printf("  %s%s%s\n", name.c_str(), dots.c_str(), value.c_str());
  else
    std::printf("  %s%s%-14s  (target %s)\n", name.c_str(), dots.c_str(), value.c_str(), target.c_str());
  std::fflush(stdout);
}

std::string fmt_ms(double ms) {
  char buf[64];
  std::snprintf(buf, sizeof buf, ms < 10 ? "%.3f ms" : "%.1f ms", ms);
  return buf;
}

// ---------------------------------------------------------------- places


// ---------------------------------------------------------------- processes

Child::Child(const Options& options) {
  if (options.argv.empty()) throw Failure("Child: empty argv");
  // Everything the child needs is built before fork: between fork and exec it only
  // makes async-signal-safe calls (other threads may hold malloc's locks).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    const bool replaced = std::any_of(options.env.begin(), options.env.end(),
                                      [&](const std::string& o) { return o.substr(0, o.find('=')) == key; });
    if (!replaced) env_strings.push_back(entry);
  }
  env_strings.insert(env_strings.end(), options.env.begin(), options.env.end());
  std::vector<char*> argv, envp;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int report[2];
  if (devnull < 0 || ::pipe2(report, O_CLOEXEC) != 0) throw Failure(errno_text("open /dev/null or pipe2"));
  const int out = options.stdout_fd >= 0 ? options.stdout_fd : devnull;
  const int err = options.stderr_fd >= 0 ? options.stderr_fd : options.stderr_fd == -2 ? 2 : devnull;
  const pid_t parent = ::getpid();

  fork_ns_ = mono_ns();
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(devnull);
    ::close(report[0]);
    ::close(report[1]);
    throw Failure(errno_text("fork"));
  }
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(devnull, 0);
    ::dup2(out, 1);
    if (err != 2) ::dup2(err, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const std::int64_t now = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    (void)!::write(report[1], &now, sizeof now);
    ::execve(argv[0], argv.data(), envp.data());
    const int e = errno;
    (void)!::write(report[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(devnull);
  ::close(report[1]);
  std::int64_t ts = 0;
  int exec_errno = 0;
  ssize_t n = 0;
  do n = ::read(report[0], &ts, sizeof ts);
  while (n < 0 && errno == EINTR);
  do n = ::read(report[0], &exec_errno, sizeof exec_errno);
  while (n < 0 && errno == EINTR);
  ::close(report[0]);
  exec_ns_ = ts;
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    kill_and_reap();
    throw Failure("cannot execute " + options.argv[0] + ": " + std::strerror(exec_errno));
  }
}

Child::~Child() {
  kill_and_reap();
}

void Child::signal(int sig) const {
  if (!exited_ && pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> Child::wait(Ms deadline) {
  if (exited_) return 0;
  const std::int64_t end = deadline_after(deadline);
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      exited_ = true;
      return status;
    }
    if (mono_ns() >= end) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
}

void Child::kill_and_reap() {
  if (exited_ || pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exited_ = true;
}

int kill_and_reap_all_children() {
  const pid_t self = ::getpid();
  std::set<pid_t> killed;
  const std::int64_t end = deadline_after(10s);
  while (mono_ns() < end) {
    if (DIR* d = ::opendir("/proc")) {
      while (dirent* e = ::readdir(d)) {
        const pid_t pid = std::atoi(e->d_name);
        if (pid <= 0) continue;
        std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
        std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto close_paren = stat.rfind(')');
        if (close_paren == std::string::npos) continue;
        std::istringstream fields(stat.substr(close_paren + 1));
        char state = 0;
        pid_t ppid = 0;
        fields >> state >> ppid;
        if (ppid == self && state != 'Z') {
          ::kill(pid, SIGKILL);
          killed.insert(pid);
        }
      }
      ::closedir(d);
    }
    int status = 0;
    pid_t r = 0;
    while ((r = ::waitpid(-1, &status, WNOHANG)) > 0) {
    }
    if (r < 0 && errno == ECHILD) break;
    std::this_thread::sleep_for(5ms);
  }
  return static_cast<int>(killed.size());
}

std::pair<int, std::string> run_capture(const std::vector<std::string>& argv, Ms deadline) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw Failure(errno_text("pipe2"));
  std::string out;
  const std::int64_t end = deadline_after(deadline);
  std::optional<Child> child;
  try {
    child.emplace(Child::Options{argv, {}, pipe_fds[1], -2});
  } catch (...) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw;
  }
  ::close(pipe_fds[1]);
  char buf[4096];
  while (wait_fd(pipe_fds[0], POLLIN, end)) {
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  const auto status = child->wait(Ms(std::max(ms_left(end), 100)));
  if (!status) {
    child->kill_and_reap();
    throw Failure(argv[0] + " did not finish in time");
  }
  return {*status, out};
}

std::optional<long> proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  }
  return std::nullopt;
}

int live_children(pid_t pid) {
  int live = 0;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(tasks.c_str());
  if (d == nullptr) return 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream children(tasks + "/" + e->d_name + "/children");
    pid_t child = 0;
    while (children >> child) {
      std::ifstream in("/proc/" + std::to_string(child) + "/stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const auto close_paren = stat.rfind(')');
      if (close_paren != std::string::npos && close_paren + 2 < stat.size() && stat[close_paren + 2] != 'Z') ++live;
    }
  }
  ::closedir(d);
  return live;
}

// ---------------------------------------------------------------- preforkd

std::string to_toml(const Setup& s) {
  std::string out = "[preforkd]\ncontrol_socket = " + toml_string(s.control_socket) + "\n" + s.daemon_extra +
                    "\n[worker]\ncommand = [";
  for (std::size_t i = 0; i < s.command.size(); ++i) out += (i ? ", " : "") + toml_string(s.command[i]);
  out += "]\ncount = " + std::to_string(s.count) + "\nready = " + toml_string(s.ready) + "\n";
  if (!s.env.empty()) {
    out += "env = { ";
    bool first = true;
    for (const auto& [k, v] : s.env) {
      out += (first ? "" : ", ") + k + " = " + toml_string(v);
      first = false;
    }
    out += " }\n";
  }
  out += s.worker_extra;
  out += "\n[[listen]]\nname = \"http\"\naddress = " + toml_string(s.listen) + "\n";
  out += s.listen_extra;
  return out;
}

std::optional<std::string> check_rejects(const Setup& setup) {
  Setup s = setup;
  TempDir dir;
  if (s.listen.empty()) s.listen = "127.0.0.1:" + std::to_string(free_port());
  if (s.control_socket.empty()) s.control_socket = dir.file("ctl.sock");
  dir.write("check.toml", to_toml(s));
  const auto [status, out] = run_capture(
      {"/bin/sh", "-c", "exec \"$0\" --check --config \"$1\" 2>&1", preforkd_bin(), dir.file("check.toml")}, 10s);
  if (status == 0) return std::nullopt;
  // One diagnostic a line, "<path>:8:1: worker.pool: unknown key; expected ...": kept
  // from the key on, up to the list of the keys it expected.
  std::string reasons;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    if (line.starts_with(dir.file("check.toml") + ":")) {
      const auto key = line.find(": ", dir.file("check.toml").size());
      if (key != std::string::npos) line.erase(0, key + 2);
    }
    line = line.substr(0, line.find("; expected"));
    reasons += (reasons.empty() ? "" : ", ") + line;
  }
  return reasons.empty() ? "preforkd --check failed (status " + std::to_string(status) + ")" : reasons;
}

LogCapture::LogCapture() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Failure(errno_text("pipe2"));
  read_fd_ = fds[0];
  write_fd_ = fds[1];
  thread_ = std::thread([this] { run(); });
}

LogCapture::~LogCapture() {
  stop_ = true;
  thread_.join();
  close_write_end();
  ::close(read_fd_);
}

void LogCapture::close_write_end() {
  if (write_fd_ >= 0) ::close(write_fd_);
  write_fd_ = -1;
}

void LogCapture::run() {
  char buf[16384];
  while (!stop_) {
    pollfd p{read_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::read(read_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    const std::int64_t now = mono_ns();
    std::lock_guard lock(mutex_);
    partial_.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0, nl = 0;
    while ((nl = partial_.find('\n', start)) != std::string::npos) {
      lines_.emplace_back(now, partial_.substr(start, nl - start));
      start = nl + 1;
    }
    partial_.erase(0, start);
    changed_.notify_all();
  }
}

std::optional<std::int64_t> LogCapture::wait_line(const std::string& needle, Ms deadline) {
  std::unique_lock lock(mutex_);
  std::optional<std::int64_t> found;
  changed_.wait_for(lock, deadline, [&] {
    for (const auto& [ts, line] : lines_) {
      if (line.find(needle) != std::string::npos) {
        found = ts;
        return true;
      }
    }
    return false;
  });
  return found;
}

int LogCapture::count_lines(const std::string& needle) const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(std::count_if(lines_.begin(), lines_.end(),
                                        [&](const auto& l) { return l.second.find(needle) != std::string::npos; }));
}

std::vector<std::string> LogCapture::lines_with(const std::string& needle) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [ts, line] : lines_)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

std::string LogCapture::tail(int lines) const {
  std::lock_guard lock(mutex_);
  std::string out;
  const std::size_t from = lines_.size() > static_cast<std::size_t>(lines) ? lines_.size() - lines : 0;
  for (std::size_t i = from; i < lines_.size(); ++i) out += "    | " + lines_[i].second + "\n";
  return out;
}

Preforkd::Preforkd(Setup setup) : setup_(std::move(setup)) {
  if (setup_.listen.empty()) setup_.listen = "127.0.0.1:" + std::to_string(free_port());
  if (setup_.control_socket.empty()) setup_.control_socket = dir_.file("ctl.sock");
  port_ = std::atoi(setup_.listen.substr(setup_.listen.rfind(':') + 1).c_str());
  dir_.write("app.toml", to_toml(setup_));
  child_.emplace(Child::Options{{preforkd_bin(), "--config", config_path()}, {}, log_.write_fd(), log_.write_fd()});
  log_.close_write_end();
}

Preforkd::~Preforkd() {
  if (!child_ || child_->exited()) return;
  child_->signal(SIGQUIT);
  if (!child_->wait(5s)) child_->kill_and_reap();
}

void Preforkd::rewrite(const Setup& setup) {
  const Setup before = setup_;
  setup_ = setup;
  if (setup_.listen.empty()) setup_.listen = before.listen;
  if (setup_.control_socket.empty()) setup_.control_socket = before.control_socket;
  dir_.write("app.toml", to_toml(setup_));
}

std::int64_t Preforkd::wait_ready(Ms deadline) {
  // As the master writes it: "1/1 worker ready", "4/4 workers ready".
  const std::string needle = std::to_string(setup_.count) + "/" + std::to_string(setup_.count) +
                             (setup_.count == 1 ? " worker ready" : " workers ready");
  const auto ts = log_.wait_line(needle, deadline);
  if (!ts) fail("no \"" + needle + "\" within " + std::to_string(deadline.count()) + " ms");
  return *ts;
}

void Preforkd::fail(const std::string& what) const {
  throw Failure(what + "; the master's log ends with:\n" + log_.tail(15));
}

// ---------------------------------------------------------------- bench_worker datagrams

StartListener::StartListener(std::string path) : path_(std::move(path)) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path_.size() >= sizeof a.sun_path) throw Failure("socket path too long: " + path_);
  std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ::unlink(path_.c_str());
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const std::string why = errno_text("bind " + path_);
    if (fd_ >= 0) ::close(fd_);
    throw Failure(why);
  }
  const int size = 4 << 20;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

StartListener::~StartListener() {
  ::close(fd_);
  ::unlink(path_.c_str());
}

std::optional<StartMessage> StartListener::receive(Ms timeout) {
  const std::int64_t end = deadline_after(timeout);
  while (wait_fd(fd_, POLLIN, end)) {
    char buf[128];
    const ssize_t n = ::recv(fd_, buf, sizeof buf - 1, 0);
    if (n <= 0) continue;
    buf[n] = '\0';
    long pid = 0;
    int slot = 0;
    long long ns = 0;
    if (std::sscanf(buf, "%ld %d %lld", &pid, &slot, &ns) == 3) return StartMessage{static_cast<pid_t>(pid), slot, ns};
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- control socket

nlohmann::json control_request(const std::string& socket_path, const std::string& request, Ms timeout,
                               double* elapsed_ms) {
  const std::int64_t end = deadline_after(timeout);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof a.sun_path) throw Failure("socket path too long: " + socket_path);
  std::memcpy(a.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const std::int64_t start = mono_ns();
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Failure(errno_text("socket"));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    throw Failure(errno_text("connect " + socket_path));
  const std::string line = request + "\n";
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
    throw Failure(errno_text("send to " + socket_path));
  std::string reply;
  char buf[65536];
  for (;;) {
    if (!wait_fd(fd, POLLIN, end)) throw Failure("no reply to " + request + " in time");
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Failure("the control socket closed before replying to " + request);
    reply.append(buf, static_cast<std::size_t>(n));
    if (reply.back() == '\n' || reply.find('\n') != std::string::npos) break;
  }
  if (elapsed_ms != nullptr) *elapsed_ms = ns_to_ms(mono_ns() - start);
  try {
    return nlohmann::json::parse(reply.substr(0, reply.find('\n')));
  } catch (const std::exception& e) {
    throw Failure(std::string("unparsable reply: ") + e.what());
  }
}

int json_int(const nlohmann::json& j, const char* key, int fallback) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int>() : fallback;
}

// ---------------------------------------------------------------- HTTP clients

Outcome http_get(int port, Ms timeout, std::string* other_reason, const std::string& path) {
  const std::int64_t end = deadline_after(timeout);
  auto other = [&](const std::string& why) {
    if (other_reason != nullptr) *other_reason = why;
    return Outcome::other;
  };
  auto by_errno = [&](int e, const char* stage) {
    if (e == ECONNREFUSED) return Outcome::refused;
    if (e == ECONNRESET || e == EPIPE) return Outcome::reset;
    if (e == ETIMEDOUT) return Outcome::timed_out;
    return other(std::string(stage) + ": " + std::strerror(e));
  };
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return other(std::string("socket: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINPROGRESS) return by_errno(errno, "connect");
    if (!wait_fd(fd, POLLOUT, end)) return Outcome::timed_out;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return by_errno(err, "connect");
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    return by_errno(errno, "send");
  std::string data;
  char buf[4096];
  for (;;) {
    if (!wait_fd(fd, POLLIN, end)) return Outcome::timed_out;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      // A reset after a whole response was read still counts as answered.
      if (data.find("\r\n\r\n") != std::string::npos && data.rfind("HTTP/1.1 200", 0) == 0) return Outcome::answered;
      return by_errno(errno, "recv");
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  if (data.empty()) return Outcome::closed;  // EOF without a response
  if (data.rfind("HTTP/1.1 200", 0) != 0 || data.find("\r\n\r\n") == std::string::npos)
    return other("bad response: " + data.substr(0, std::min<std::size_t>(data.find('\r'), 40)));
  return Outcome::answered;
}

LoadClient::LoadClient(int port, int threads, Ms timeout) : per_thread_(static_cast<std::size_t>(threads)) {
  started_ns_ = mono_ns();
  for (int t = 0; t < threads; ++t) {
    threads_.emplace_back([this, port, timeout, t] {
      LoadStats& s = per_thread_[static_cast<std::size_t>(t)];
      while (!stop_) {
        std::string reason;
        const std::int64_t begin = mono_ns();
        switch (http_get(port, timeout, &reason)) {
          case Outcome::answered:
            ++s.answered;
            s.latencies_ms.push_back(ns_to_ms(mono_ns() - begin));
            break;
          case Outcome::refused:
            ++s.refused;
            break;
          case Outcome::reset:
            ++s.reset;
            break;
          case Outcome::closed:
            ++s.reset;
            ++s.closed;
            break;
          case Outcome::timed_out:
            ++s.timed_out;
            break;
          case Outcome::other:
            ++s.other;
            ++s.other_reasons[reason];
            // Not a server's answer (e.g. no free local port): do not spin on it.
            std::this_thread::sleep_for(1ms);
            break;
        }
      }
    });
  }
}

LoadClient::~LoadClient() {
  if (!stopped_) stop();
}

LoadStats LoadClient::stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  stopped_ = true;
  LoadStats all;
  all.seconds = static_cast<double>(mono_ns() - started_ns_) / 1e9;
  for (const auto& s : per_thread_) {
    all.answered += s.answered;
    all.refused += s.refused;
    all.reset += s.reset;
    all.timed_out += s.timed_out;
    all.other += s.other;
    all.closed += s.closed;
    for (const auto& [k, v] : s.other_reasons) all.other_reasons[k] += v;
    all.latencies_ms.insert(all.latencies_ms.end(), s.latencies_ms.begin(), s.latencies_ms.end());
  }
  return all;
}

void print_outcomes(const std::string& title, const LoadStats& s) {
  std::printf("  %s: %ld requests in %.1f s (%.0f/s)\n", title.c_str(), s.total(), s.seconds,
              s.seconds > 0 ? static_cast<double>(s.total()) / s.seconds : 0.0);
  std::printf("    %-10s %8ld   latency p50 %s, p99 %s, max %s\n", "answered", s.answered,
              fmt_ms(percentile(s.latencies_ms, 50)).c_str(), fmt_ms(percentile(s.latencies_ms, 99)).c_str(),
              fmt_ms(percentile(s.latencies_ms, 100)).c_str());
  std::printf("    %-10s %8ld\n", "refused", s.refused);
  std::printf("    %-10s %8ld   (%ld ECONNRESET, %ld EOF without a response)\n", "reset", s.reset, s.reset - s.closed,
              s.closed);
  std::printf("    %-10s %8ld\n", "timed out", s.timed_out);
  if (s.other > 0) {
    std::printf("    %-10s %8ld\n", "other", s.other);
    for (const auto& [why, n] : s.other_reasons) std::printf("      %6ld  %s\n", n, why.c_str());
  }
  std::fflush(stdout);
}

}  // namespace bench
