#include "control_helpers.hpp"

#include <catch2/catch.hpp>
#include <csignal>

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>

extern char** environ;

namespace bt {

void stop_cleanly(Daemon& d) {
  d.signal(SIGTERM);
  const std::optional<int> code = d.wait_exit();
  // The log as it is after the exit, not as it was when the test began.
  INFO("exit status " << (code ? std::to_string(*code) : std::string("none: still running")) << "; log:\n" << d.log());
  CHECK(code == std::optional<int>(0));
  CHECK(no_process_left(d.pid()));
}


namespace {

using Clock = std::chrono::steady_clock;

int left_ms(Clock::time_point end) {
  const auto left = std::chrono::duration_cast<Ms>(end - Clock::now()).count();
  return static_cast<int>(std::max<long long>(left, 0));
}

}  // namespace

CtlResult run_ctl(const std::vector<std::string>& args, Ms deadline, const std::vector<std::string>& env) {
  // Everything the child needs is built before fork: after it, only exec-safe calls.
  std::vector<std::string> argv_s{PREFORKCTL_BIN};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const auto name = entry.substr(0, entry.find('=') + 1);
    bool replaced = false;
    for (const auto& extra : env) replaced = replaced || extra.rfind(name, 0) == 0;
    if (!replaced) env_s.push_back(entry);
  }
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  CtlResult result;
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return result;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  const auto end = Clock::now() + deadline;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const int rc = ::poll(fds, 2, left_ms(end));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) {
      result.timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) ::close(p.fd);
  int status = 0;
  const bool exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, Ms(left_ms(end)) + 1s);
  if (!exited) {
    result.timed_out = true;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return result;
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string control_socket(const Daemon& d) {
  return d.dir().file("app.sock");
}

CtlResult ctl(const Daemon& d, const std::vector<std::string>& args, Ms deadline) {
  std::vector<std::string> full{"--socket", control_socket(d)};
  full.insert(full.end(), args.begin(), args.end());
  return run_ctl(full, deadline);
}

// --- raw control connections ----------------------------------------------------------

ControlConnection::ControlConnection(const std::string& path, Ms timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    connect_errno_ = ENAMETOOLONG;
    return;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    connect_errno_ = errno;
    return;
  }
  // connect() on a unix socket blocks while the backlog is full: bound it.
  const auto ms = timeout.count();
  const timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    connect_errno_ = errno;
    ::close(fd);
    return;
  }
  fd_ = fd;
}

ControlConnection::~ControlConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool ControlConnection::send(const std::string& data) {
  if (fd_ < 0) return false;
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<std::string> ControlConnection::read_line(Ms timeout) {
  if (fd_ < 0) return std::nullopt;
  const auto end = Clock::now() + timeout;
  while (true) {
    if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (eof_) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, left_ms(end));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return std::nullopt;
    char buf[16 * 1024];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      continue;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

bool ControlConnection::wait_closed(Ms timeout, std::string* discarded) {
  if (fd_ < 0) return true;
  if (discarded != nullptr) *discarded = buffer_;
  buffer_.clear();
  if (eof_) return true;
  const auto end = Clock::now() + timeout;
  while (true) {
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, left_ms(end));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    char buf[16 * 1024];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      return true;
    }
    if (discarded != nullptr) discarded->append(buf, static_cast<std::size_t>(n));
  }
}

bool ControlConnection::quiet_and_open() const {
  if (fd_ < 0 || eof_ || !buffer_.empty()) return false;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

std::optional<nlohmann::json> control_request(const std::string& path, const std::string& line, Ms timeout) {
  ControlConnection c(path, timeout);
  if (!c.connected() || !c.send(line + "\n")) return std::nullopt;
  const auto reply = c.read_line(timeout);
  if (!reply) return std::nullopt;
  auto j = nlohmann::json::parse(*reply, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::optional<nlohmann::json> status_of(const Daemon& d, Ms timeout) {
  auto j = control_request(control_socket(d), R"({"cmd":"status"})", timeout);
  if (!j || !j->is_object() || j->value("ok", false) != true) return std::nullopt;
  return j;
}

std::optional<nlohmann::json> wait_workers_ready(const Daemon& d, int count, std::optional<int> generation,
                                                 Ms deadline) {
  std::optional<nlohmann::json> last;
  const bool ok = wait_until(
      [&] {
        auto s = status_of(d, 5s);
        if (!s) return false;
        last = s;
        const auto& workers = (*s)["workers"];
        if (!workers.is_array() || static_cast<int>(workers.size()) != count) return false;
        if (generation && (*s)["master"].value("generation", -1) != *generation) return false;
        for (const auto& w : workers)
          if (w.value("state", "") != "ready" || w.value("pid", -1) <= 0) return false;
        return true;
      },
      deadline);
  if (!ok) return std::nullopt;
  return last;
}

std::vector<pid_t> pids_in(const nlohmann::json& status) {
  std::vector<pid_t> pids;
  for (const auto& w : status.at("workers")) {
    const int slot = w.at("slot").get<int>();
    if (slot >= static_cast<int>(pids.size())) pids.resize(static_cast<std::size_t>(slot) + 1, -1);
    pids[static_cast<std::size_t>(slot)] = w.value("pid", -1);
  }
  return pids;
}

std::vector<nlohmann::json> env_of_workers(int port, int count, Ms deadline) {
  std::vector<nlohmann::json> seen(static_cast<std::size_t>(count));
  int found = 0;
  wait_until(
      [&] {
        auto r = http_get(port, "/env", 5s);
        if (!r || r->status != 200) return false;
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        if (j.is_discarded() || !j.contains("slot") || !j["slot"].is_string()) return false;
        const int slot = std::atoi(j["slot"].get<std::string>().c_str());
        if (slot < 0 || slot >= count) return false;
        if (seen[static_cast<std::size_t>(slot)].is_null()) ++found;
        seen[static_cast<std::size_t>(slot)] = j;
        return found == count;
      },
      deadline);
  return seen;
}

void rewrite_config(const Daemon& d, const std::string& text) {
  // Written beside it and renamed over it: a reload never reads half a file.
  d.dir().write("app.toml.new", text);
  std::rename(d.dir().file("app.toml.new").c_str(), d.config_path().c_str());
}

// --- load --------------------------------------------------------------------------------

LoadClient::LoadClient(int port, Ms request_timeout)
    : port_(port), timeout_(request_timeout), started_(Clock::now()), thread_([this] { run(); }) {}

LoadClient::~LoadClient() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

namespace {

// GET / on a fresh connection, like http_get, but a failure says what went wrong.
struct Attempt {
  std::optional<Hello> hello;
  std::string failure;  // empty when answered
};

Attempt get_hello(int port, Ms timeout) {
  const auto end = Clock::now() + timeout;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return {std::nullopt, std::string("socket: ") + std::strerror(errno)};
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 && errno != EINPROGRESS)
    return {std::nullopt, std::string("connect: ") + std::strerror(errno)};
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, left_ms(end)) != 1) return {std::nullopt, "connect: timed out"};
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return {std::nullopt, std::string("connect: ") + std::strerror(err)};
  const std::string req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return {std::nullopt, std::string("send: ") + std::strerror(errno)};
  std::string data;
  while (true) {
    pollfd r{fd, POLLIN, 0};
    const int rc = ::poll(&r, 1, left_ms(end));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return {std::nullopt, "no answer in time (" + std::to_string(data.size()) + " bytes read)"};
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return {std::nullopt, "recv after " + std::to_string(data.size()) + " bytes: " + std::strerror(errno)};
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  const auto head_end = data.find("\r\n\r\n");
  if (data.rfind("HTTP/1.1 200", 0) != 0 || head_end == std::string::npos)
    return {std::nullopt, "bad answer: '" + data.substr(0, 40) + "' (" + std::to_string(data.size()) + " bytes)"};
  auto h = parse_hello(data.substr(head_end + 4));
  if (!h) return {std::nullopt, "not a hello: '" + data.substr(head_end + 4, 40) + "'"};
  return {h, ""};
}

// Wall-clock time of day with milliseconds, as preforkd's log prints it.
std::string time_of_day() {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  tm local{};
  ::localtime_r(&tv.tv_sec, &local);
  return fmt::format("{:02}:{:02}:{:02}.{:03}", local.tm_hour, local.tm_min, local.tm_sec, tv.tv_usec / 1000);
}

}  // namespace

void LoadClient::run() {
  while (!stop_) {
    const auto start = Clock::now();
    const std::string wall = time_of_day();
    const Attempt attempt = get_hello(port_, timeout_);
    std::lock_guard lock(mutex_);
    if (attempt.hello) {
      ++stats_.answered;
      ++answered_;
      stats_.pids.insert(attempt.hello->pid);
    } else {
      ++stats_.failed;
      if (stats_.failures.size() < 20) {
        const auto at = std::chrono::duration_cast<Ms>(start - started_).count();
        const auto took = std::chrono::duration_cast<Ms>(Clock::now() - start).count();
        stats_.failures.push_back(fmt::format("{} (at {} ms, took {} ms): {}", wall, at, took, attempt.failure));
      }
    }
  }
}

bool LoadClient::wait_answered(int n, Ms deadline) {
  const int target = answered_.load() + n;
  return wait_until([&] { return answered_.load() >= target; }, deadline);
}

LoadClient::Stats LoadClient::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  return stats_;
}

std::string describe(const LoadClient::Stats& s) {
  std::string text = fmt::format("load client: {} answered, {} failed", s.answered, s.failed);
  for (const auto& f : s.failures) text += "\n  " + f;
  return text;
}

}  // namespace bt
