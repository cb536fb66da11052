// Fail fast when nobody can answer ([[listen]] fail_fast_after): while no worker has been
// ready for that long (every slot crash-looping), the master accepts the connections that
// arrive on the held sockets and resets them, so a client sees a reset at once instead
// of waiting for its own timeout; the moment a worker is ready again, they are served.

#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "control_helpers.hpp"
#include "harness.hpp"

using namespace bt;

namespace {

// What became of one request on a fresh connection.
enum class Outcome { answered, reset, closed, refused, timed_out, broken };

const char* text(Outcome o) {
  switch (o) {
    case Outcome::answered: return "answered";
    case Outcome::reset: return "reset";
    case Outcome::closed: return "closed without an answer";
    case Outcome::refused: return "refused at connect";
    case Outcome::timed_out: return "timed out";
    case Outcome::broken: return "client error";
  }
  return "?";
}

// A GET sent on a fresh connection now; outcome() says what came back.
class Request {
 public:
  explicit Request(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // On loopback the handshake completes in the kernel as long as the socket listens.
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      early_ = errno == ECONNREFUSED ? Outcome::refused : Outcome::broken;
      return;
    }
    const std::string get = "GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    if (::send(fd_, get.data(), get.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(get.size()))
      early_ = errno == ECONNRESET || errno == EPIPE ? Outcome::reset : Outcome::broken;
  }
  ~Request() {
    if (fd_ >= 0) ::close(fd_);
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  Outcome outcome(Ms timeout) {
    if (fd_ < 0) return Outcome::broken;
    if (early_) return *early_;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return Outcome::timed_out;
    char buf[256];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) return std::string_view(buf, static_cast<std::size_t>(n)).starts_with("HTTP/1.1 200") ? Outcome::answered : Outcome::broken;
    if (n == 0) return Outcome::closed;
    return errno == ECONNRESET ? Outcome::reset : Outcome::broken;
  }

 private:
  int fd_ = -1;
  std::optional<Outcome> early_;
};

// Every worker crashes at once while `crash_file` exists, and serves once it is gone;
// ready after 500 ms alive, so a crashing worker is never ready.
std::string crash_looping(int port, const std::string& crash_file, const std::string& fail_fast_after) {
  const std::string script = "if [ -e " + crash_file + " ]; then exit 1; fi; exec " + fixture("sync_worker");
  return toml({.address = local_address(port),
               .count = 2,
               .ready = "500ms",
               .worker = "backoff_initial = \"100ms\"\nbackoff_max = \"400ms\"\n",
               .command = {"/bin/sh", "-c", script}}) +
         "fail_fast_after = " + toml_string(fail_fast_after) + "\n";
}

nlohmann::json listener(const Daemon& d) {
  auto status = status_of(d);
  if (!status || (*status)["listeners"].empty()) return nlohmann::json::object();
  return (*status)["listeners"][0];
}

}  // namespace

TEST_CASE("with every worker crash-looping - connections are reset after fail_fast_after and served once one is ready") {
  const int port = free_port();
  TempDir files;
  const std::string crash_file = files.file("crash");
  std::ofstream(crash_file) << "crash\n";
  const auto started = std::chrono::steady_clock::now();
  Daemon d(crash_looping(port, crash_file, "1s"));
  REQUIRE(d.wait_log("starting 2 workers", 10s));  // the sockets are bound before

  // A connection made before the threshold waits, then is reset when refusing starts:
  // not before fail_fast_after, and soon after it (generous bounds: the machine is noisy).
  Request early(port);
  const Outcome first = early.outcome(10s);
  const auto reset_after = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - started);
  INFO(d.log());
  CHECK(std::string(text(first)) == text(Outcome::reset));
  CHECK(reset_after >= 900ms);
  CHECK(reset_after < 6s);
  CHECK(d.wait_log("listener 'http': no worker ready for 1s, refusing connections until one is", 10s));

  // A fresh connection now: reset at once, and counted.
  for (int i = 0; i < 3; ++i) {
    Request fresh(port);
    CHECK(std::string(text(fresh.outcome(5s))) == text(Outcome::reset));
  }
  const auto refusing = listener(d);
  INFO(refusing.dump());
  CHECK(refusing.value("refusing", false));
  CHECK(refusing.value("refused_total", 0) >= 4);

  // A worker can start again: it becomes ready, refusing stops, connections are served.
  REQUIRE(std::remove(crash_file.c_str()) == 0);
  REQUIRE(d.wait_log("no longer refusing connections", 20s));
  const auto r = http_get(port, "/", 10s);
  REQUIRE(r);
  CHECK(r->status == 200);
  const auto served = listener(d);
  INFO(served.dump());
  CHECK_FALSE(served.value("refusing", true));
  CHECK(served.value("refused_total", 0) >= 4);
  // Logged once when it started and once when it ended.
  CHECK(d.count_log("refusing connections until one is") == 1);
  CHECK(d.count_log("no longer refusing connections") == 1);
  stop_cleanly(d);
}

TEST_CASE("fail_fast_after = 0s never refuses: connections wait for a worker") {
  const int port = free_port();
  TempDir files;
  const std::string crash_file = files.file("crash");
  std::ofstream(crash_file) << "crash\n";
  Daemon d(crash_looping(port, crash_file, "0s"));
  REQUIRE(d.wait_log("restarting in", 10s));
  Request waiting(port);
  // Long past any threshold the default would have: still waiting, neither reset nor answered.
  CHECK(std::string(text(waiting.outcome(2s))) == text(Outcome::timed_out));
  REQUIRE(std::remove(crash_file.c_str()) == 0);
  // Then the first worker to start takes it.
  CHECK(std::string(text(waiting.outcome(20s))) == text(Outcome::answered));
  INFO(d.log());
  CHECK(d.count_log("refusing") == 0);
  stop_cleanly(d);
}
