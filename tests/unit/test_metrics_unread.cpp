// The /metrics endpoint's limit on answers its clients leave unread (README, "Limits":
// 16 MiB in all, then a scrape gets 503 until they read). Exercised on MetricsServer with
// the options the master uses (the defaults) and a 4 MiB body, so that a few silent
// clients reach the limit before the 64-connection limit closes any of them.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <preforkd/core/address.hpp>
#include <preforkd/daemon/endpoints/metrics_server.hpp>
#include <string>
#include <utility>
#include <vector>

#include "../support/loop_thread.hpp"

using namespace preforkd;
using daemon::MetricsServer;
using daemon::MetricsServerOptions;

namespace {

constexpr std::size_t body_bytes = 4 * 1024 * 1024;
const std::string request = "GET /metrics HTTP/1.1\r\nHost: preforkd\r\n\r\n";

// A port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  return ok ? ntohs(a.sin_port) : 0;
}

// A client that sent its request; `small_window`: a 4 KiB receive buffer, so that what it
// does not read stays with the server rather than in this socket.
class Scraper {
 public:
  Scraper(std::uint16_t port, bool small_window) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    if (small_window) {
      const int size = 4096;
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
          ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size());
  }
  ~Scraper() { ::close(fd_); }
  Scraper(const Scraper&) = delete;
  Scraper& operator=(const Scraper&) = delete;
  [[nodiscard]] bool ok() const { return ok_; }

  // Reads the whole answer (until the server closes, 10 s at most).
  std::string read_all() {
    std::string out;
    char buffer[65536];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fd_;
  bool ok_ = false;
};

// The status code of a whole scrape, and the body's size.
std::pair<int, std::size_t> scrape(std::uint16_t port) {
  Scraper s(port, false);
  if (!s.ok()) return {0, 0};
  const std::string answer = s.read_all();
  const auto end = answer.find("\r\n\r\n");
  if (answer.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return {0, 0};
  return {std::stoi(answer.substr(9, 3)), answer.size() - end - 4};
}

}  // namespace

TEST_CASE("metrics: past 16 MiB of answers unread a scrape gets 503 until the clients read", "[metrics]") {
  std::signal(SIGPIPE, SIG_IGN);  // as the master does
  REQUIRE(MetricsServerOptions::default_max_unsent_bytes == 16 * 1024 * 1024);
  const std::uint16_t port = free_port();
  REQUIRE(port != 0);
  MetricsServerOptions options;  // the master's: only the address is set
  options.address = *parse_address("127.0.0.1:" + std::to_string(port));
  testsupport::LoopThread loop;
  std::unique_ptr<MetricsServer> server;
  std::string why;
  loop.call([&] {
    auto opened = MetricsServer::open(loop.loop(), options, [] { return std::string(body_bytes, '#'); });
    if (opened)
      server = std::move(*opened);
    else
      why = opened.error();
  });
  REQUIRE(server != nullptr);
  INFO(why);

  CHECK(scrape(port) == std::pair<int, std::size_t>{200, body_bytes});
  // Silent clients one by one until a scrape is refused: their answers wait, unread.
  std::vector<std::unique_ptr<Scraper>> silent;
  std::pair<int, std::size_t> last{0, 0};
  while (silent.size() < 32) {
    silent.push_back(std::make_unique<Scraper>(port, true));
    REQUIRE(silent.back()->ok());
    last = scrape(port);
    if (last.first != 200) break;
  }
  INFO(silent.size() << " silent clients");
  CHECK(last.first == 503);
  // Not before 16 MiB: each silent client holds one answer (4 MiB and its head, counted
  // whole until the kernel took all of it), and the refused scrape would have added one
  // more; with one silent client fewer, the scrape before was answered.
  constexpr std::size_t head_bytes = 1024;  // more than any answer's status line and headers
  CHECK(silent.size() * (body_bytes + head_bytes) + body_bytes > options.max_unsent_bytes);
  CHECK((silent.size() - 1) * body_bytes + body_bytes <= options.max_unsent_bytes);
  CHECK(loop.call([&] { return server->clients(); }) >= silent.size());  // none was closed

  // Once they read their answers, scrapes are answered again.
  for (auto& s : silent) CHECK(s->read_all().size() > body_bytes);
  silent.clear();
  CHECK(scrape(port) == std::pair<int, std::size_t>{200, body_bytes});
  loop.call([&] { server.reset(); });
}
