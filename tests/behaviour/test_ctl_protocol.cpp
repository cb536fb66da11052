// The control socket under bad clients: malformed JSON, unknown commands, oversized and
// stalled requests, and peers that are not allowed. Each gets an error or a closed
// connection, and the master keeps serving everyone else.

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstring>

#include "control_helpers.hpp"
#include "../support/skip.hpp"

using namespace bt;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

std::optional<json> parse(const std::optional<std::string>& line) {
  if (!line) return std::nullopt;
  auto j = json::parse(*line, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool is_error(const std::optional<json>& j) {
  return j && j->is_object() && j->value("ok", true) == false && j->contains("error") && (*j)["error"].is_string() &&
         !(*j)["error"].get<std::string>().empty();
}

}  // namespace

TEST_CASE("malformed JSON gets an error and the connection then answers a valid request", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 1}));
  REQUIRE(wait_workers_ready(d, 1, 0));

  ControlConnection c(control_socket(d));
  REQUIRE(c.connected());
  REQUIRE(c.send("{\"cmd\": \"status\",,}\n"));
  const auto bad = parse(c.read_line());
  INFO("reply to malformed JSON: " << (bad ? bad->dump() : "none"));
  REQUIRE(is_error(bad));
  CHECK((*bad)["error"].get<std::string>().find("JSON") != std::string::npos);

  REQUIRE(c.send("{\"cmd\":\"status\"}\n"));
  const auto good = parse(c.read_line());
  INFO("reply to status on the same connection: " << (good ? good->dump() : "none"));
  REQUIRE(good);
  CHECK(good->value("ok", false) == true);
  CHECK((*good)["master"].value("pid", -1) == d.pid());

  stop_cleanly(d);
}

TEST_CASE("an unknown command gets an error", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 1}));
  REQUIRE(wait_workers_ready(d, 1, 0));

  const auto reply = control_request(control_socket(d), R"({"cmd":"dance"})");
  INFO("reply: " << (reply ? reply->dump() : "none"));
  REQUIRE(is_error(reply));
  CHECK((*reply)["error"].get<std::string>().find("dance") != std::string::npos);
  // A JSON value that is not a request object, too.
  CHECK(is_error(control_request(control_socket(d), "[1,2,3]")));
  CHECK(status_of(d));

  stop_cleanly(d);
}

TEST_CASE("a 70 KiB request line gets an error or a closed connection and the master keeps serving", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 1}));
  REQUIRE(wait_workers_ready(d, 1, 0));

  // A valid status request padded with JSON whitespace: only the size limit can refuse it.
  const std::string line = R"({"cmd":"status"})" + std::string(70 * 1024, ' ') + "\n";
  ControlConnection c(control_socket(d));
  REQUIRE(c.connected());
  (void)c.send(line);  // the master may hang up before it has read it all
  std::string seen;
  const bool closed = c.wait_closed(30s, &seen);
  INFO("the master sent: " << seen);
  CHECK(closed);
  if (!seen.empty()) {
    const auto reply = parse(seen.substr(0, seen.find('\n')));
    CHECK(is_error(reply));
  }
  CHECK(seen.find("\"ok\":true") == std::string::npos);

  // A new client is served.
  const auto s = status_of(d);
  REQUIRE(s);
  CHECK((*s)["master"].value("pid", -1) == d.pid());

  stop_cleanly(d);
}

TEST_CASE("a client that sends half a line and stalls is closed after the idle timeout - others are served",
          "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 1}));
  REQUIRE(wait_workers_ready(d, 1, 0));

  ControlConnection stalled(control_socket(d));
  REQUIRE(stalled.connected());
  REQUIRE(stalled.send(R"({"cmd":"sta)"));
  const auto stalled_at = Clock::now();

  // Meanwhile, other clients are answered, while the stalled one is still open.
  for (int i = 0; i < 5; ++i) {
    const auto s = status_of(d);
    REQUIRE(s);
    CHECK((*s)["master"].value("pid", -1) == d.pid());
  }
  const CtlResult r = ctl(d, {"status"});
  CHECK(r.exit_code == 0);
  CHECK(stalled.quiet_and_open());

  std::string seen;
  const bool closed = stalled.wait_closed(30s, &seen);
  const auto after = std::chrono::duration_cast<Ms>(Clock::now() - stalled_at);
  INFO("closed after " << after.count() << " ms; the master sent: " << seen);
  CHECK(closed);
  CHECK(after >= 5s);  // the idle timeout (10 s by default), not at once
  if (!seen.empty()) CHECK(is_error(parse(seen.substr(0, seen.find('\n')))));
  CHECK(status_of(d));

  stop_cleanly(d);
}

TEST_CASE("a peer whose uid is not allowed gets a permission error", "[control]") {
  if (::geteuid() != 0) {
    SKIP_OR_FAIL("the tests do not run as root, so they cannot connect as another uid (nobody)");
  }
  const int port = free_port();
  // 0666: the file mode lets anyone connect, so only the peer-credential check can refuse.
  Daemon d(toml({.address = local_address(port), .count = 1, .preforkd = "control_mode = \"0666\""}));
  REQUIRE(wait_workers_ready(d, 1, 0));
  // mkdtemp made the dir 0700; nobody needs to reach the socket inside it.
  REQUIRE(::chmod(d.dir().path().c_str(), 0755) == 0);
  const std::string path = control_socket(d);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0777) == 0666);

  constexpr uid_t nobody = 65534;
  constexpr gid_t nogroup = 65534;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  const std::string request = "{\"cmd\":\"status\"}\n";
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    // Only async-signal-safe calls here; exit codes say where it failed.
    ::close(out[0]);
    if (::setgroups(0, nullptr) != 0 || ::setgid(nogroup) != 0 || ::setuid(nobody) != 0) _exit(10);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) _exit(11);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(12);
    (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);  // may be hung up on first
    char buf[1024];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
      if (::write(out[1], buf, static_cast<std::size_t>(n)) != n) _exit(13);
    }
    _exit(0);
  }
  ::close(out[1]);
  std::string reply;
  char buf[1024];
  ssize_t n = 0;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) reply.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("child status " << status << "; reply: " << reply << "\nlog: " << d.log());
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);  // it did connect: the file mode did not stop it

  const auto j = parse(reply.substr(0, reply.find('\n')));
  REQUIRE(is_error(j));
  CHECK((*j)["error"].get<std::string>().find("permission denied") != std::string::npos);
  CHECK(reply.find("\"workers\"") == std::string::npos);  // no status leaked
  CHECK(d.wait_log("refused uid 65534"));
  // Root is still served.
  CHECK(status_of(d));

  stop_cleanly(d);
}
