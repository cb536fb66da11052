#include "harness.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace bt {

bool wait_until(const std::function<bool()>& cond, Ms deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(5ms);
  }
}


std::string local_address(int port) {
  return "127.0.0.1:" + std::to_string(port);
}

std::string toml_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string toml(const DemoConfig& c) {
  std::vector<std::string> command = c.command;
  if (command.empty()) {
    command.push_back(demo_bin());
    command.insert(command.end(), c.args.begin(), c.args.end());
  }
  std::string out;
  if (!c.preforkd.empty()) out += "[preforkd]\n" + c.preforkd + "\n";
  out += "[worker]\ncommand = [";
  for (std::size_t i = 0; i < command.size(); ++i) out += (i ? ", " : "") + toml_string(command[i]);
  out += "]\ncount = " + std::to_string(c.count) + "\n";
  out += "ready = " + toml_string(c.ready) + "\n";
  out += "stop_timeout = " + toml_string(c.stop_timeout) + "\n";
  out += c.worker;
  out += "\n[[listen]]\nname = \"http\"\naddress = " + toml_string(c.address) + "\n";
  return out;
}

namespace {

bool wait_fd(int fd, short events, Ms timeout) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

}  // namespace

namespace {

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Starts a non-blocking connect and queues the request in the socket (or in the kernel's
// connect path); -1 when connect fails at once (refused, no such socket).
int connect_and_send(int family, const sockaddr* addr, socklen_t len, const std::string& path, Ms timeout) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  FdCloser closer{fd};
  if (::connect(fd, addr, len) < 0 && errno != EINPROGRESS) return -1;
  if (!wait_fd(fd, POLLOUT, timeout)) return -1;
  int err = 0;
  socklen_t elen = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) return -1;
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return -1;
  closer.fd = -1;
  return fd;
}

std::optional<HttpResponse> read_response(int fd, Ms timeout) {
  std::string data;
  const auto end = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<Ms>(end - std::chrono::steady_clock::now());
    if (left <= Ms::zero() || !wait_fd(fd, POLLIN, left)) return std::nullopt;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return std::nullopt;
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  const auto head_end = data.find("\r\n\r\n");
  if (data.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) return std::nullopt;
  HttpResponse r;
  r.status = std::atoi(data.c_str() + 9);
  r.body = data.substr(head_end + 4);
  return r;
}

}  // namespace

std::optional<HttpResponse> http_get(int port, const std::string& path, Ms timeout) {
  const sockaddr_in a = loopback(port);
  const int fd = connect_and_send(AF_INET, reinterpret_cast<const sockaddr*>(&a), sizeof a, path, timeout);
  if (fd < 0) return std::nullopt;
  FdCloser closer{fd};
  return read_response(fd, timeout);
}

std::optional<HttpResponse> http_get_unix(const std::string& socket_path, const std::string& path, Ms timeout) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof a.sun_path) return std::nullopt;
  std::memcpy(a.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = connect_and_send(AF_UNIX, reinterpret_cast<const sockaddr*>(&a), sizeof a, path, timeout);
  if (fd < 0) return std::nullopt;
  FdCloser closer{fd};
  return read_response(fd, timeout);
}

PendingGet::PendingGet(int port, const std::string& path) {
  const sockaddr_in a = loopback(port);
  // The handshake completes in the kernel even while no worker accepts (the SYN is
  // queued on a listening socket), so a short timeout is enough here.
  fd_ = connect_and_send(AF_INET, reinterpret_cast<const sockaddr*>(&a), sizeof a, path, 5s);
  sent_ = fd_ >= 0;
}

PendingGet::PendingGet(PendingGet&& other) noexcept : fd_(std::exchange(other.fd_, -1)), sent_(other.sent_) {}

PendingGet::~PendingGet() {
  if (fd_ >= 0) ::close(fd_);
}

bool PendingGet::delivered() const {
  int unacked = 0;
  return fd_ >= 0 && ::ioctl(fd_, SIOCOUTQ, &unacked) == 0 && unacked == 0;
}

std::optional<HttpResponse> PendingGet::response(Ms timeout) {
  if (fd_ < 0) return std::nullopt;
  return read_response(fd_, timeout);
}

std::optional<Hello> parse_hello(const std::string& body) {
  Hello h;
  if (std::sscanf(body.c_str(), "hello from worker %d (pid %d)", &h.slot, &h.pid) != 2) return std::nullopt;
  return h;
}

std::optional<Hello> hello(int port, Ms timeout) {
  auto r = http_get(port, "/", timeout);
  if (!r || r->status != 200) return std::nullopt;
  return parse_hello(r->body);
}

LoadStats hello_load(int port, Ms duration, int clients, Ms pause, Ms timeout, Ms slow) {
  std::mutex mutex;
  LoadStats total;
  const auto end = std::chrono::steady_clock::now() + duration;
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      LoadStats mine;
      while (std::chrono::steady_clock::now() < end) {
        const auto start = std::chrono::steady_clock::now();
        const auto h = hello(port, timeout);
        const auto took = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - start);
        if (!h) {
          ++mine.failed;
        } else {
          ++mine.answered;
          ++mine.by_slot[h->slot];
          if (took > slow) ++mine.slow;
          mine.slowest = std::max(mine.slowest, took);
        }
        if (pause > 0ms) std::this_thread::sleep_for(pause);  // pacing, not waiting for a condition
      }
      std::lock_guard lock(mutex);
      total.answered += mine.answered;
      total.failed += mine.failed;
      total.slow += mine.slow;
      total.slowest = std::max(total.slowest, mine.slowest);
      for (auto [slot, n] : mine.by_slot) total.by_slot[slot] += n;
    });
  }
  for (auto& t : threads) t.join();
  return total;
}

std::vector<Hello> distinct_workers(int port, int count, Ms deadline) {
  std::map<int, pid_t> seen;
  wait_until(
      [&] {
        if (auto h = hello(port, 5s)) seen[h->slot] = h->pid;
        return static_cast<int>(seen.size()) >= count;
      },
      deadline);
  std::vector<Hello> out;
  for (auto [slot, pid] : seen) out.push_back({slot, pid});
  return out;
}

pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  char state = 0;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

bool process_alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

namespace {

std::map<std::string, std::string> environment_of(pid_t pid) {
  std::map<std::string, std::string> env;
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string entry;
  while (std::getline(in, entry, '\0')) {
    const auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

std::vector<pid_t> all_pids() {
  std::vector<pid_t> pids;
  DIR* d = ::opendir("/proc");
  while (d != nullptr) {
    const dirent* e = ::readdir(d);
    if (e == nullptr) break;
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9') pids.push_back(std::atoi(e->d_name));
  }
  if (d != nullptr) ::closedir(d);
  return pids;
}

}  // namespace

std::vector<pid_t> processes_of_master(pid_t master) {
  std::vector<pid_t> out;
  const std::string want = std::to_string(master);
  for (pid_t pid : all_pids()) {
    auto env = environment_of(pid);
    auto it = env.find("PREFORK_MASTER_PID");
    if (it != env.end() && it->second == want && process_alive(pid)) out.push_back(pid);
  }
  return out;
}

bool no_process_left(pid_t master, Ms deadline) {
  return wait_until([&] { return processes_of_master(master).empty(); }, deadline);
}

int open_sockets(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  int n = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (const dirent* e = ::readdir(d)) {
    char target[64] = {};
    const std::string link = dir + "/" + e->d_name;
    if (::readlink(link.c_str(), target, sizeof target - 1) > 0 && std::strncmp(target, "socket:", 7) == 0) ++n;
  }
  ::closedir(d);
  return n;
}

pid_t worker_pid(pid_t master, int slot) {
  const std::string m = std::to_string(master), s = std::to_string(slot);
  for (pid_t pid : all_pids()) {
    auto env = environment_of(pid);
    if (env["PREFORK_MASTER_PID"] == m && env["PREFORK_WORKER_ID"] == s && env["LISTEN_PID"] == std::to_string(pid) &&
        process_alive(pid))
      return pid;
  }
  return -1;
}

std::string demo_bin() {
  return DEMO_BIN;
}
std::string fixture(const std::string& name) {
  return std::string(FIXTURE_DIR) + "/" + name;
}

namespace {

pid_t start_process(const std::vector<std::string>& args, const std::string& log_path, int pending_signal = 0,
                    const PassedFds& passed = {}) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // With passed sockets, the environment is built before the fork (the test process has
  // threads: nothing may allocate in the child) with room for LISTEN_PID's digits.
  std::vector<std::string> env_text;
  std::vector<char*> envp;
  std::size_t pid_entry = 0;
  if (!passed.fds.empty()) {
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry(*e);
      if (entry.starts_with("LISTEN_") || entry.starts_with("RUNTIME_DIRECTORY=")) continue;
      env_text.emplace_back(entry);
    }
    env_text.push_back("RUNTIME_DIRECTORY=" + log_path.substr(0, log_path.rfind('/')));
    env_text.push_back("LISTEN_FDS=" + std::to_string(passed.listen_fds > 0 ? static_cast<std::size_t>(passed.listen_fds)
                                                                              : passed.fds.size()));
    env_text.push_back("LISTEN_FDNAMES=" + passed.names);
    pid_entry = env_text.size();
    env_text.push_back("LISTEN_PID=" + (passed.listen_pid.empty() ? std::string(20, '\0') : passed.listen_pid));
    for (auto& e : env_text) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  int go[2] = {-1, -1};  // closed by the test process once it closed its copies
  if (passed.close_in_test && ::pipe2(go, O_CLOEXEC) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid > 0 && passed.close_in_test) {
    for (int fd : passed.fds) ::close(fd);
    ::close(go[0]);
    ::close(go[1]);
  }
  if (pid == 0 && !passed.fds.empty()) {
    if (passed.close_in_test) {
      ::close(go[1]);
      char byte;
      while (::read(go[0], &byte, 1) < 0 && errno == EINTR) {
      }
    }
    ::setpgid(0, 0);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    // Only fds 3, 4, ... below are passed: no other fd of this child outlives the exec.
    if (devnull > 2) ::close(devnull);
    // LISTEN_PID=<own pid>, written without allocating.
    char* digits = envp[pid_entry] + std::strlen("LISTEN_PID=");
    char reversed[20];
    int n = 0;
    for (auto v = static_cast<unsigned long>(::getpid()); v > 0 || n == 0; v /= 10) reversed[n++] = static_cast<char>('0' + v % 10);
    if (passed.listen_pid.empty()) {
      for (int i = 0; i < n; ++i) digits[i] = reversed[n - 1 - i];
      digits[n] = '\0';
    }
    // Out of the way first (a source may be one of the targets), then to 3, 4, …;
    // dup2 clears FD_CLOEXEC.
    const int count = static_cast<int>(passed.fds.size());
    int moved[256];
    for (int i = 0; i < count && i < 256; ++i) moved[i] = ::fcntl(passed.fds[static_cast<std::size_t>(i)], F_DUPFD_CLOEXEC, 3 + count + 64);
    for (int i = 0; i < count && i < 256; ++i) {
      ::dup2(moved[i], 3 + i);
      ::close(moved[i]);
    }
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    // The default control socket goes to $RUNTIME_DIRECTORY: each test has its own.
    const std::string runtime_dir = log_path.substr(0, log_path.rfind('/'));
    ::setenv("RUNTIME_DIRECTORY", runtime_dir.c_str(), 1);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    if (pending_signal != 0) {
      // Blocked and pending across the exec: delivered as soon as preforkd unblocks it.
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, pending_signal);
      ::sigprocmask(SIG_BLOCK, &set, nullptr);
      ::kill(::getpid(), pending_signal);
    }
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

std::optional<int> wait_pid(pid_t pid, Ms deadline) {
  int status = 0;
  bool done = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, deadline);
  if (!done) return std::nullopt;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Daemon::Daemon(const std::string& config_toml, std::vector<std::string> extra_args, int pending_signal,
               const PassedFds& passed) {
  dir_.write("app.toml", config_toml);
  std::vector<std::string> args{PREFORKD_BIN, "--config", config_path()};
  for (auto& a : extra_args) args.push_back(std::move(a));
  pid_ = start_process(args, dir_.file("log"), pending_signal, passed);
}

Daemon::~Daemon() {
  if (!exited_) {
    ::kill(pid_, SIGKILL);
    wait_exit(30s);
  }
  // Workers die with their master (parent-death signal); make sure, without waiting forever.
  wait_until([&] { return processes_of_master(pid_).empty(); }, 10s);
  for (pid_t p : processes_of_master(pid_)) ::kill(p, SIGKILL);
}

std::string Daemon::log() const {
  return read_file(dir_.file("log"));
}

bool Daemon::wait_log(const std::string& needle, Ms deadline) const {
  return wait_until([&] { return log().find(needle) != std::string::npos; }, deadline);
}

int Daemon::count_log(const std::string& needle) const {
  const std::string text = log();
  int n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

void Daemon::signal(int sig) const {
  ::kill(pid_, sig);
}

std::optional<int> Daemon::wait_exit(Ms deadline) {
  if (exited_) return exit_code_;
  auto code = wait_pid(pid_, deadline);
  if (code) {
    exited_ = true;
    exit_code_ = *code;
  }
  return code;
}

std::pair<int, std::string> run_preforkd(const std::vector<std::string>& args, Ms deadline) {
  std::vector<std::string> full{PREFORKD_BIN};
  full.insert(full.end(), args.begin(), args.end());
  return run_command(full, deadline);
}

std::pair<int, std::string> run_command(const std::vector<std::string>& full, Ms deadline) {
  TempDir dir;
  const pid_t pid = start_process(full, dir.file("out"));
  auto code = wait_pid(pid, deadline);
  if (!code) {
    ::kill(pid, SIGKILL);
    code = wait_pid(pid, 10s);
  }
  return {code.value_or(-1), read_file(dir.file("out"))};
}

}  // namespace bt
