// The control server on a real loop (in a thread) with real client sockets in a temp dir:
// replies, limits, timeouts, socket-file safety and peer credentials.

#include <preforkd/daemon/endpoints/control_server.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <grp.h>
#include <mutex>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "../support/loop_thread.hpp"
#include "../support/skip.hpp"

using namespace preforkd;
using namespace std::chrono_literals;
using daemon::ControlServer;
using daemon::ControlServerOptions;
using nlohmann::json;
using testsupport::LoopThread;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/preforkd-ctl-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// A blocking client with a receive timeout, so a missing reply fails instead of hanging.
class Client {
 public:
  explicit Client(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    const timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { close(); }
  Client(Client&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), connected_(o.connected_), buffer_(std::move(o.buffer_)) {}

  [[nodiscard]] bool connected() const { return connected_; }
  void send(const std::string& data) {
    for (std::size_t off = 0; off < data.size();) {
      const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server hung up: what it said is still readable
      off += static_cast<std::size_t>(n);
    }
  }
  // Sends what the socket takes now, without blocking; the number of bytes sent.
  std::size_t send_some(const std::string& data) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  // Something to read (or EOF) within `ms`.
  bool readable(int ms) {
    if (!buffer_.empty()) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  void close() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }
  // The next reply line as JSON; nullopt at EOF, on error or after 5 s.
  std::optional<json> reply() {
    while (true) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        const std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return json::parse(line);
      }
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }
  // True when the server has closed the connection (EOF or reset), with nothing more to read.
  bool closed_by_server() {
    char c = 0;
    const ssize_t n = ::recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

 private:
  int fd_;
  bool connected_ = false;
  std::string buffer_;
};

// A server on a loop thread whose handler answers status at once and holds reload
// requests until the test answers them.
struct Fixture {
  TempDir dir;
  LoopThread loop;
  std::unique_ptr<ControlServer> server;
  std::vector<ControlServer::Responder> held;  // loop thread only
  int handled = 0;                             // loop thread only

  Fixture() { std::signal(SIGPIPE, SIG_IGN); }  // as the master does
  ~Fixture() {
    loop.call([this] {
      held.clear();
      server.reset();
    });
  }
  std::string path() const { return dir.path + "/ctl.sock"; }

  ControlServerOptions options() {
    ControlServerOptions o;
    o.path = path();
    o.idle_timeout = 5s;
    return o;
  }
  // The server or why not. (Not a Result: a Result holding a unique_ptr, passed through
  // std::packaged_task, trips a false -Wfree-nonheap-object in GCC 12 at -O2.)
  struct Opened {
    std::unique_ptr<ControlServer> server;
    std::string why;
    [[nodiscard]] bool ok() const { return server != nullptr; }
    [[nodiscard]] const std::string& error() const { return why; }
  };
  Opened open(ControlServerOptions o) {
    return loop.call([&] {
      auto r = ControlServer::open(loop.loop(), o, [this](const control::Request& r, ControlServer::Responder respond) {
        ++handled;
        if (r.command == control::Request::Command::reload) {
          held.push_back(std::move(respond));
        } else {
          respond(control::make_ok({{"cmd", control::to_string(r.command)}}));
        }
      });
      if (!r) return Opened{nullptr, r.error()};
      return Opened{std::move(r.value()), {}};
    });
  }
  void start(ControlServerOptions o) {
    auto opened = open(std::move(o));
    REQUIRE(opened.ok());
    server = std::move(opened.server);
  }
  void start() { start(options()); }
  std::size_t held_count() {
    return loop.call([this] { return held.size(); });
  }
  void answer_held(json reply) {
    loop.call([this, reply] {
      for (auto& respond : held) respond(reply);
    });
  }
  bool wait_for(const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!condition()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
};

bool is_ok(const std::optional<json>& reply, const std::string& cmd) {
  return reply && (*reply)["ok"] == true && (*reply)["cmd"] == cmd;
}

std::string error_of(const std::optional<json>& reply) {
  if (!reply || (*reply)["ok"] != false) return "<no error reply>";
  return (*reply)["error"].get<std::string>();
}

}  // namespace

TEST_CASE("a request gets the handler's reply - bad lines get errors on a live connection", "[control_server]") {
  Fixture f;
  f.start();
  Client c(f.path());
  REQUIRE(c.connected());
  c.send("{\"cmd\":\"status\"}\n");
  CHECK(is_ok(c.reply(), "status"));
  c.send("{nope\n");
  CHECK(error_of(c.reply()).starts_with("malformed JSON: "));
  c.send("{\"cmd\":\"explode\"}\r\n");
  CHECK(error_of(c.reply()) == "unknown command 'explode'");
  c.send("\n{\"cmd\":\"scale\",\"delta\":1}\n");
  CHECK(is_ok(c.reply(), "scale"));
}

TEST_CASE("pipelined requests are answered one at a time - in order", "[control_server]") {
  Fixture f;
  f.start();
  Client c(f.path());
  c.send("{\"cmd\":\"reload\"}\n{\"cmd\":\"status\"}\n");
  REQUIRE(f.wait_for([&] { return f.held_count() == 1; }));
  // Both lines arrived in one read; the second waits for the reload's reply.
  CHECK(f.loop.call([&] { return f.handled; }) == 1);
  f.answer_held(control::make_ok({{"cmd", "reload"}}));
  CHECK(is_ok(c.reply(), "reload"));
  CHECK(is_ok(c.reply(), "status"));
}

TEST_CASE("a client that half-closes after its request still gets the reply", "[control_server]") {
  Fixture f;
  f.start();
  Client c(f.path());
  c.send("{\"cmd\":\"stop\"}");  // no newline: EOF ends the line
  c.shutdown_write();
  CHECK(is_ok(c.reply(), "stop"));
  CHECK(c.closed_by_server());
}

TEST_CASE("an oversized request is refused and closed - others are still served", "[control_server]") {
  Fixture f;
  f.start();
  Client big(f.path());
  big.send(std::string(70 * 1024, 'x'));  // no newline: refused before one arrives
  CHECK(error_of(big.reply()) == "request too long: more than 65536 bytes");
  CHECK(big.closed_by_server());

  Client next(f.path());
  next.send("{\"cmd\":\"status\"}\n");
  CHECK(is_ok(next.reply(), "status"));
}

TEST_CASE("a stalled half line is closed after the idle timeout", "[control_server]") {
  Fixture f;
  auto o = f.options();
  o.idle_timeout = 200ms;
  f.start(o);
  Client c(f.path());
  const auto start = std::chrono::steady_clock::now();
  c.send("{\"cmd\":\"sta");
  CHECK(error_of(c.reply()) == "request timed out: no end of line after 200ms");
  CHECK(c.closed_by_server());
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 150ms);
  CHECK(waited < 3s);

  Client silent(f.path());
  CHECK(silent.closed_by_server());  // a connection that says nothing is closed too
}

TEST_CASE("200 clients asking for status at once all get answers", "[control_server]") {
  Fixture f;
  auto o = f.options();
  o.max_clients = 256;
  f.start(o);
  std::vector<Client> clients;
  for (int i = 0; i < 200; ++i) clients.emplace_back(f.path());
  for (auto& c : clients) c.send("{\"cmd\":\"status\"}\n");
  int answered = 0;
  for (auto& c : clients) answered += is_ok(c.reply(), "status") ? 1 : 0;
  CHECK(answered == 200);
}

TEST_CASE("a client over max_clients is told and closed", "[control_server]") {
  Fixture f;
  auto o = f.options();
  o.max_clients = 2;
  f.start(o);
  std::vector<Client> first;
  for (int i = 0; i < 2; ++i) {
    first.emplace_back(f.path());
    first.back().send("{\"cmd\":\"status\"}\n");
    REQUIRE(is_ok(first.back().reply(), "status"));
  }
  Client extra(f.path());
  CHECK(error_of(extra.reply()) == "too many clients: at most 2 connections at once; try again");
  CHECK(extra.closed_by_server());

  first.front().close();
  REQUIRE(f.wait_for([&] { return f.loop.call([&] { return f.server->clients(); }) == 1; }));
  Client later(f.path());
  later.send("{\"cmd\":\"status\"}\n");
  CHECK(is_ok(later.reply(), "status"));
}

TEST_CASE("a responder called after its client or its server has gone is dropped", "[control_server]") {
  Fixture f;
  f.start();
  {
    Client c(f.path());
    c.send("{\"cmd\":\"reload\"}\n");
    REQUIRE(f.wait_for([&] { return f.held_count() == 1; }));
  }  // the client hangs up before the reply
  f.answer_held(control::make_ok({{"cmd", "reload"}}));
  f.answer_held(control::make_ok({{"cmd", "twice"}}));  // a second call is ignored
  REQUIRE(f.wait_for([&] { return f.loop.call([&] { return f.server->clients(); }) == 0; }));

  Client c(f.path());
  c.send("{\"cmd\":\"reload\"}\n");
  REQUIRE(f.wait_for([&] { return f.held_count() == 2; }));
  f.loop.call([&] { f.server.reset(); });
  CHECK(c.closed_by_server());
  f.answer_held(control::make_ok());
  CHECK_FALSE(std::filesystem::exists(f.path()));  // the socket file goes with the server
}

TEST_CASE("the socket file: directories and mode and stale and live sockets", "[control_server]") {
  Fixture f;
  auto o = f.options();
  o.path = f.dir.path + "/run/preforkd/app.sock";
  o.mode = 0660;
  f.start(o);
  struct stat st {};
  REQUIRE(::stat(o.path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0660);
  REQUIRE(::stat((f.dir.path + "/run/preforkd").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);

  // A second server on a live socket refuses to start and leaves the first one alone.
  auto second = f.open(o);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error() == "control socket '" + o.path + "' is in use by a running preforkd");
  Client c(o.path);
  c.send("{\"cmd\":\"status\"}\n");
  CHECK(is_ok(c.reply(), "status"));

  // A regular file at the path is not ours to remove.
  const std::string file = f.dir.path + "/not-a-socket";
  std::ofstream(file) << "data";
  o.path = file;
  auto refused = f.open(o);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error() == "control socket '" + file + "' exists and is not a socket; remove it or set control_socket");
  CHECK(std::filesystem::exists(file));
}

TEST_CASE("a stale socket file left by a dead master is replaced", "[control_server]") {
  Fixture f;
  {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", f.path().c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);  // the file stays, nobody listens
  }
  REQUIRE(std::filesystem::exists(f.path()));
  f.start();
  Client c(f.path());
  c.send("{\"cmd\":\"status\"}\n");
  CHECK(is_ok(c.reply(), "status"));
}

TEST_CASE("peers that are neither root nor the owner nor in the group are refused", "[control_server]") {
  if (::geteuid() != 0) {
    SKIP_OR_FAIL("checking peer credentials needs root, to connect as another user (nobody)");
  }
  constexpr uid_t nobody = 65534;
  Fixture f;
  REQUIRE(::chmod(f.dir.path.c_str(), 0755) == 0);
  auto o = f.options();
  o.mode = 0666;  // the file lets anyone connect; the credentials must not
  f.start(o);

  // Runs a client as nobody in a child; returns the reply line it got.
  const auto as_nobody = [&](gid_t gid) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    const std::string request = "{\"cmd\":\"status\"}\n";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", f.path().c_str());
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls: the parent has other threads.
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(nobody) != 0) _exit(10);
      const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(11);
      // A refused peer may be hung up on before it writes: the reply is still there to read.
      (void)!::write(fd, request.data(), request.size());
      char buf[512];
      ssize_t n = 0;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        if (::write(out[1], buf, static_cast<std::size_t>(n)) < 0) _exit(13);
        if (buf[n - 1] == '\n') break;
      }
      _exit(0);
    }
    ::close(out[1]);
    std::string got;
    char buf[512];
    pollfd p{out[0], POLLIN, 0};
    while (::poll(&p, 1, 5000) > 0) {
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return got;
  };

  const std::string refused = as_nobody(nobody);
  REQUIRE_FALSE(refused.empty());
  CHECK(error_of(json::parse(refused)) == "permission denied: uid 65534 is not allowed to use this socket");

  // In the control group: served.
  f.loop.call([&] { f.server.reset(); });
  o.group = nobody;
  f.start(o);
  const std::string served = as_nobody(nobody);
  REQUIRE_FALSE(served.empty());
  CHECK(is_ok(json::parse(served), "status"));
}

TEST_CASE("a request that trickles in times out from its first byte - not its last", "[control_server]") {
  // Issue 13: one byte every 4 s kept a connection forever (the timeout restarted on each).
  Fixture f;
  auto o = f.options();
  o.idle_timeout = 300ms;
  f.start(o);
  Client c(f.path());
  const auto start = std::chrono::steady_clock::now();
  const std::string request = "{\"cmd\":\"status\"" + std::string(200, ' ');
  std::size_t sent = 0;
  // One byte each 50 ms (pacing the trickle, not waiting for anything), until the server
  // answers or 10 s pass.
  while (!c.readable(50) && std::chrono::steady_clock::now() - start < 10s) {
    c.send(std::string(1, request[sent % request.size()]));
    ++sent;
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(error_of(c.reply()) == "request timed out: no end of line after 300ms");
  CHECK(c.closed_by_server());
  CHECK(waited < 5s);
}

TEST_CASE("when full the connection waiting longest for a complete request makes room", "[control_server]") {
  // Issue 13: connections trickling bytes locked `preforkctl status` out ("too many clients").
  Fixture f;
  auto o = f.options();
  o.max_clients = 2;
  f.start(o);
  Client oldest(f.path());
  oldest.send("{");
  REQUIRE(f.wait_for([&] { return f.loop.call([&] { return f.server->clients(); }) == 1; }));
  Client newer(f.path());
  newer.send("{\"cmd\"");
  REQUIRE(f.wait_for([&] { return f.loop.call([&] { return f.server->clients(); }) == 2; }));

  Client status(f.path());
  status.send("{\"cmd\":\"status\"}\n");
  CHECK(is_ok(status.reply(), "status"));
  CHECK(oldest.closed_by_server());
  // The other one keeps its place and finishes its request.
  newer.send(":\"status\"}\n");
  CHECK(is_ok(newer.reply(), "status"));
}

TEST_CASE("a client that does not read its replies is not read either", "[control_server]") {
  // Issue 13: pipelining without reading grew the master to 1 GB of replies.
  Fixture f;
  auto o = f.options();
  o.max_unsent_bytes = 64 * 1024;
  f.start(o);
  Client c(f.path());
  const std::string request = "{\"cmd\":\"status\"}\n";
  const std::string batch = [&] {
    std::string b;
    for (int i = 0; i < 256; ++i) b += request;
    return b;
  }();
  // Send whole requests as long as the server takes them; stop when it has taken none for
  // 500 ms (it stopped reading) or after 10 MB.
  std::size_t sent = 0;
  std::string pending;
  auto last_progress = std::chrono::steady_clock::now();
  while (sent < 10 * 1024 * 1024 && std::chrono::steady_clock::now() - last_progress < 500ms) {
    if (pending.empty()) pending = batch;
    const std::size_t n = c.send_some(pending);
    if (n > 0) {
      pending.erase(0, n);
      sent += n;
      last_progress = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(5ms);
    }
  }
  // The last request may be cut: only the whole ones are answered.
  const std::size_t requests = sent / request.size();
  const std::size_t unsent = f.loop.call([&] { return f.server->unsent_bytes(); });
  INFO("sent " << sent << " bytes, unsent replies " << unsent);
  CHECK(sent < 10 * 1024 * 1024);
  CHECK(unsent <= o.max_unsent_bytes + 1024);

  // Reading the replies lets it go on: every request is answered, in order.
  std::size_t answered = 0;
  while (answered < requests && is_ok(c.reply(), "status")) ++answered;
  CHECK(answered == requests);
}
