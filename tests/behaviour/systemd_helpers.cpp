#include "systemd_helpers.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bt::sd {

std::optional<std::string> Datagram::get(const std::string& name) const {
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    if (line.rfind(name + "=", 0) == 0) return line.substr(name.size() + 1);
    start = end + 1;
  }
  return std::nullopt;
}

bool Datagram::has(const std::string& assignment) const {
  const auto eq = assignment.find('=');
  const auto value = get(assignment.substr(0, eq));
  return value && *value == assignment.substr(eq + 1);
}

FakeSystemd::FakeSystemd() {
  path_ = dir_.file("notify");
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("FakeSystemd: socket: ") + std::strerror(errno));
  const int on = 1;
  if (::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
    throw std::runtime_error(std::string("FakeSystemd: SO_PASSCRED: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) throw std::runtime_error("FakeSystemd: path too long: " + path_);
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    throw std::runtime_error("FakeSystemd: bind '" + path_ + "': " + std::strerror(errno));
  if (::pipe2(stop_pipe_, O_CLOEXEC) < 0) throw std::runtime_error("FakeSystemd: pipe2 failed");
  thread_ = std::thread([this] { receive_loop(); });
}

FakeSystemd::~FakeSystemd() {
  const char byte = 0;
  (void)!::write(stop_pipe_[1], &byte, 1);
  if (thread_.joinable()) thread_.join();
  ::close(stop_pipe_[0]);
  ::close(stop_pipe_[1]);
  ::close(fd_);
  for (const auto& m : messages_)
    for (int fd : m.fds) ::close(fd);
}

void FakeSystemd::receive_loop() {
  while (true) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    while (true) {
      char buf[4096];
      // Credentials, and the fds of FDSTORE=1 (one per message; room for more).
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(16 * sizeof(int))];
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (n < 0) break;  // drained
      Datagram d;
      d.at = Clock::now();
      d.text.assign(buf, static_cast<std::size_t>(n));
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
          ucred cred{};
          std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
          d.sender = cred.pid;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
          const std::size_t n_fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
          for (std::size_t k = 0; k < n_fds; ++k) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
            d.fds.push_back(fd);
          }
        }
      }
      std::lock_guard lock(mutex_);
      messages_.push_back(std::move(d));
    }
  }
}

std::vector<Datagram> FakeSystemd::messages() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

std::optional<std::size_t> FakeSystemd::wait_for(const std::string& assignment, std::size_t from, Ms deadline) const {
  std::optional<std::size_t> found;
  wait_until(
      [&] {
        std::lock_guard lock(mutex_);
        for (std::size_t i = from; i < messages_.size(); ++i) {
          if (messages_[i].has(assignment)) {
            found = i;
            return true;
          }
        }
        return false;
      },
      deadline);
  return found;
}

int FakeSystemd::count(const std::string& assignment) const {
  std::lock_guard lock(mutex_);
  int n = 0;
  for (const auto& m : messages_) n += m.has(assignment) ? 1 : 0;
  return n;
}

std::unique_ptr<Daemon> start_daemon(const std::string& config_toml, const EnvChanges& env,
                                     const PassedFds& passed) {
  std::map<std::string, std::optional<std::string>> saved;
  for (const auto& [name, value] : env) {
    if (!saved.contains(name)) {
      const char* old = std::getenv(name.c_str());
      saved[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) ::setenv(name.c_str(), value->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
  // The child inherits the environment at fork, inside Daemon's constructor.
  auto daemon = std::make_unique<Daemon>(config_toml, std::vector<std::string>{}, 0, passed);
  for (const auto& [name, value] : saved) {
    if (value) ::setenv(name.c_str(), value->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
  return daemon;
}

namespace {

std::string drain(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return out;
  }
}

}  // namespace

CtlResult run_preforkctl(const std::string& socket, const std::vector<std::string>& args, Ms deadline) {
  std::vector<std::string> full{PREFORKCTL_BIN, "--socket", socket};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Output goes to files rather than pipes: nothing to pump while waiting.
  TempDir dir;
  const std::string out_path = dir.file("out"), err_path = dir.file("err");
  const int out_fd = ::open(out_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  const int err_fd = ::open(err_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls after fork: the test process may have threads.
    ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(null_fd);
  CtlResult result;
  int status = 0;
  const bool done = pid > 0 && wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, deadline);
  if (pid > 0 && !done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  if (done) result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  ::lseek(out_fd, 0, SEEK_SET);
  ::lseek(err_fd, 0, SEEK_SET);
  result.out = drain(out_fd);
  result.err = drain(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  return result;
}

std::string control_socket(const Daemon& d) { return d.dir().file("app.sock"); }

std::optional<nlohmann::json> status_json(const Daemon& d) {
  const auto r = run_preforkctl(control_socket(d), {"status", "--json"}, 10s);
  if (r.code != 0) return std::nullopt;
  auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::map<pid_t, std::string> worker_states(const nlohmann::json& status) {
  std::map<pid_t, std::string> out;
  for (const auto& w : status["workers"])
    if (w["pid"].is_number_integer() && w["pid"].get<pid_t>() > 0) out[w["pid"].get<pid_t>()] = w["state"].get<std::string>();
  return out;
}

bool all_in_state(const nlohmann::json& status, int count, const std::string& state) {
  const auto states = worker_states(status);
  if (static_cast<int>(states.size()) != count || static_cast<int>(status["workers"].size()) != count) return false;
  for (const auto& [pid, s] : states)
    if (s != state) return false;
  return true;
}

std::optional<nlohmann::json> worker_env(int port) {
  const auto r = http_get(port, "/env", 5s);
  if (!r || r->status != 200) return std::nullopt;
  auto j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::vector<nlohmann::json> worker_envs(int port, int count, Ms deadline) {
  std::map<std::string, nlohmann::json> by_slot;
  wait_until(
      [&] {
        if (auto env = worker_env(port); env && (*env)["slot"].is_string()) by_slot[(*env)["slot"].get<std::string>()] = *env;
        return static_cast<int>(by_slot.size()) >= count;
      },
      deadline);
  std::vector<nlohmann::json> out;
  for (auto& [slot, env] : by_slot) out.push_back(std::move(env));
  return out;
}

unsigned long long monotonic_usec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL + static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
}

}  // namespace bt::sd
