// The one stream server (daemon/uv/stream_server) on a real loop in a thread, with real
// client sockets: an echo protocol on TCP and Unix sockets, the connection limit (the one
// waiting longest makes room, or the newcomer is told it is full), the deadline, and the
// listen errors.

#include <preforkd/daemon/uv/stream_server.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <netinet/in.h>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "../support/loop_thread.hpp"

using namespace preforkd;
using namespace std::chrono_literals;
using daemon::StreamConnection;
using daemon::StreamServer;
using testsupport::LoopThread;

namespace {

// Echoes each chunk; says "full" to a connection it cannot admit; a connection with
// `patient` never counts as waiting (it is never closed to make room).
class Echo final : public StreamConnection {
 public:
  explicit Echo(bool patient, Duration deadline) : patient_(patient), deadline_(deadline) {}

 private:
  void accepted() override {
    if (admit() == Admission::full) {
      if (!write("full\n")) close();
      full_ = true;
      return;
    }
    if (!start_reading() || !arm(deadline_)) close();
  }
  void bytes_arrived(std::string_view data) override {
    if (!write(std::string(data))) close();
  }
  void peer_closed() override { close(); }
  void written(std::size_t, bool ok) override {
    if (!ok || full_) close();
  }
  void timed_out() override {
    if (!write("late\n")) close();
    full_ = true;  // closes once written
  }
  [[nodiscard]] std::optional<Clock::time_point> waiting_since() const override {
    if (patient_) return std::nullopt;
    return accepted_at();
  }

  bool patient_;
  Duration deadline_;
  bool full_ = false;
};

// A blocking client with a receive timeout, so a missing answer fails instead of hanging.
class Client {
 public:
  explicit Client(const sockaddr* addr, socklen_t len) : fd_(::socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    const timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_, addr, len) == 0;
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  [[nodiscard]] bool connected() const { return connected_; }
  void send(const std::string& data) { (void)::send(fd_, data.data(), data.size(), MSG_NOSIGNAL); }
  // Up to `n` bytes, or what came before EOF ("" at EOF), or "<timeout>".
  std::string read(std::size_t n) {
    std::string got;
    char buf[256];
    while (got.size() < n) {
      const ssize_t r = ::recv(fd_, buf, std::min(sizeof buf, n - got.size()), 0);
      if (r < 0) return got + "<timeout>";
      if (r == 0) break;
      got.append(buf, static_cast<std::size_t>(r));
    }
    return got;
  }

 private:
  int fd_;
  bool connected_ = false;
};

// A server opened on the loop, or why not (GCC 12 warns wrongly about a Result<unique_ptr>
// passed through std::packaged_task, so loop.call returns this instead).
struct Opened {
  std::unique_ptr<StreamServer> server;
  std::string error;
};

template <class Open>
Opened open_on(LoopThread& loop, Open open) {
  return loop.call([&] {
    auto r = open();
    if (!r) return Opened{nullptr, r.error()};
    return Opened{std::move(*r), ""};
  });
}

sockaddr_in tcp_address(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return a;
}

struct TcpFixture {
  LoopThread loop;
  std::unique_ptr<StreamServer> server;
  sockaddr_in address{};
  bool patient = false;
  Duration deadline = std::chrono::seconds(30);

  explicit TcpFixture(std::size_t max_connections) {
    // Port 0: the kernel picks a free one (parse_address refuses it, as a config should).
    Address any_port;
    any_port.host = "127.0.0.1";
    any_port.text = "127.0.0.1:0";
    const std::optional<Address> parsed = any_port;
    auto opened = open_on(loop, [&] {
      return StreamServer::listen_tcp(loop.loop(), *parsed, {.name = "test", .max_connections = max_connections},
                                      [this] { return std::make_shared<Echo>(patient, deadline); });
    });
    REQUIRE(opened.server);
    server = std::move(opened.server);
    address = tcp_address(loop.call([&] { return server->fd(); }));
  }
  ~TcpFixture() {
    loop.call([&] { server.reset(); });
  }
  std::unique_ptr<Client> connect() {
    auto c = std::make_unique<Client>(reinterpret_cast<const sockaddr*>(&address), sizeof address);
    REQUIRE(c->connected());
    return c;
  }
  std::size_t admitted() {
    return loop.call([&] { return server->admitted(); });
  }
  bool wait_for_admitted(std::size_t n) {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      if (admitted() == n) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
};

}  // namespace

TEST_CASE("a stream server echoes over TCP and counts its connections", "[stream_server]") {
  TcpFixture f(4);
  auto a = f.connect();
  a->send("hello");
  CHECK(a->read(5) == "hello");
  CHECK(f.admitted() == 1);
  a.reset();
  CHECK(f.wait_for_admitted(0));
  CHECK(f.loop.call([&] { return f.server->unsent_bytes(); }) == 0);
}

TEST_CASE("a stream server listens on a bound Unix socket it was given", "[stream_server]") {
  LoopThread loop;
  os::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "preforkd-stream-test-" + std::to_string(::getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract: no file to remove
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0);
  auto opened = open_on(loop, [&] {
    return StreamServer::listen_unix(loop.loop(), std::move(fd), {.name = "test", .max_connections = 4},
                                     [] { return std::make_shared<Echo>(false, std::chrono::seconds(30)); });
  });
  REQUIRE(opened.server);
  auto server = std::move(opened.server);
  {
    Client c(reinterpret_cast<const sockaddr*>(&addr), len);
    REQUIRE(c.connected());
    c.send("over unix");
    CHECK(c.read(9) == "over unix");
  }
  loop.call([&] { server.reset(); });
}

TEST_CASE("a full stream server closes the connection waiting longest to admit a new one", "[stream_server]") {
  TcpFixture f(2);
  auto first = f.connect();
  REQUIRE(f.wait_for_admitted(1));
  auto second = f.connect();
  REQUIRE(f.wait_for_admitted(2));
  auto third = f.connect();
  CHECK(first->read(1).empty());  // EOF: made room
  third->send("in");
  CHECK(third->read(2) == "in");
  second->send("still");
  CHECK(second->read(5) == "still");
  CHECK(f.admitted() == 2);
}

TEST_CASE("a full stream server whose connections do not wait refuses the newcomer", "[stream_server]") {
  TcpFixture f(1);
  f.patient = true;
  auto first = f.connect();
  REQUIRE(f.wait_for_admitted(1));
  auto second = f.connect();
  CHECK(second->read(5) == "full\n");
  CHECK(second->read(1).empty());  // then closed
  first->send("kept");
  CHECK(first->read(4) == "kept");
}

TEST_CASE("a stream connection's deadline fires once armed", "[stream_server]") {
  TcpFixture f(2);
  f.deadline = 100ms;
  auto c = f.connect();
  CHECK(c->read(5) == "late\n");
  CHECK(c->read(1).empty());
  CHECK(f.wait_for_admitted(0));
}

TEST_CASE("a stream server names why it cannot listen", "[stream_server]") {
  LoopThread loop;
  TcpFixture taken(1);
  const auto address = parse_address("127.0.0.1:" + std::to_string(ntohs(taken.address.sin_port)));
  REQUIRE(address);
  auto opened = open_on(loop, [&] {
    return StreamServer::listen_tcp(loop.loop(), *address, {.name = "test", .max_connections = 1},
                                    [] { return std::make_shared<Echo>(false, std::chrono::seconds(30)); });
  });
  REQUIRE_FALSE(opened.server);
  CHECK(opened.error == "address already in use");
  const auto unix_address = parse_address("unix:/tmp/x.sock");
  REQUIRE(unix_address);
  auto refused = open_on(loop, [&] {
    return StreamServer::listen_tcp(loop.loop(), *unix_address, {.name = "test", .max_connections = 1},
                                    [] { return std::make_shared<Echo>(false, std::chrono::seconds(30)); });
  });
  REQUIRE_FALSE(refused.server);
  CHECK(refused.error == "must be a TCP address");
}
