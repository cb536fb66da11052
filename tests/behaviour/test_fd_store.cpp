// systemd's fd store (issue 10 point 6), with the test playing systemd: the master hands
// its listening sockets over with FDSTORE=1 and a name per slot; after the master is
// killed with -9, a connection queues on a stored socket; a new master started with those
// sockets in LISTEN_FDS takes them back and answers it. Sockets that do not match the
// config are not taken (a new one is bound, or start-up fails while the port is held).

#include "harness.hpp"
#include "systemd_helpers.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <csignal>
#include <map>
#include <netinet/in.h>
#include <set>
#include <sys/socket.h>
#include <unistd.h>

using namespace bt;
using namespace bt::sd;

namespace {

// The fds the fake systemd holds under each name (the latest FDSTORE=1 for it, unless
// an FDSTOREREMOVE=1 came after it), as systemd's store would.
std::map<std::string, int> store_of(const FakeSystemd& systemd) {
  std::map<std::string, int> store;
  for (const auto& m : systemd.messages()) {
    const auto name = m.get("FDNAME");
    if (!name) continue;
    if (m.has("FDSTOREREMOVE=1")) store.erase(*name);
    if (m.has("FDSTORE=1") && m.fds.size() == 1) store[*name] = m.fds.front();
  }
  return store;
}

int bound_port(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return -1;
  return ntohs(sa.sin_port);
}

bool listening(int fd) {
  int value = 0;
  socklen_t len = sizeof value;
  return ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) == 0 && value == 1;
}

// A listening TCP socket on 127.0.0.1:port, as some other process (or an old master) left it.
int listening_socket(int port, bool reuseport) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

TEST_CASE("the master stores its sockets in systemd's fd store and a restarted master takes them back",
          "[systemd][fd_store]") {
  const int port = free_port();
  FakeSystemd systemd;
  const std::string config = toml({.address = local_address(port), .count = 2});
  auto first = start_daemon(config, {{"NOTIFY_SOCKET", systemd.path()}});
  // Both slots' sockets, each under its name with its fd.
  REQUIRE(systemd.wait_for("FDNAME=preforkd.http.0"));
  REQUIRE(systemd.wait_for("FDNAME=preforkd.http.1"));
  REQUIRE(systemd.wait_for("READY=1"));
  const auto stored = store_of(systemd);
  {
    INFO(first->log());
    REQUIRE(stored.size() == 2);
    for (const auto& [name, fd] : stored) {
      INFO(name);
      CHECK(listening(fd));
      CHECK(bound_port(fd) == port);
    }
    for (const auto& m : systemd.messages()) {
      if (m.has("FDSTORE=1")) CHECK(m.sender == first->pid());
    }
  }

  // The master dies without a word; its workers die with it. Only "systemd" holds the sockets.
  const pid_t old_master = first->pid();
  first->signal(SIGKILL);
  REQUIRE(first->wait_exit());
  REQUIRE(no_process_left(old_master));
  // A client connects meanwhile: its connection waits in a stored socket's accept queue.
  PendingGet queued(port, "/");
  REQUIRE(queued.sent());
  REQUIRE(wait_until([&] { return queued.delivered(); }));

  // systemd restarts the service with the store in LISTEN_FDS.
  const std::size_t before_restart = systemd.messages().size();
  auto second = start_daemon(config, {{"NOTIFY_SOCKET", systemd.path()}},
                             PassedFds{{stored.at("preforkd.http.0"), stored.at("preforkd.http.1")},
                                       "preforkd.http.0:preforkd.http.1"});
  const auto answer = queued.response(30s);
  const bool took = second->wait_log("fd store: took 2 stored sockets of listener 'http'");
  INFO(second->log());
  CHECK(took);
  REQUIRE(answer);
  CHECK(answer->status == 200);
  CHECK(parse_hello(answer->body));
  CHECK(second->count_log("not taking") == 0);
  // The new master stores the same sockets again (systemd keeps one copy of each).
  REQUIRE(systemd.wait_for("FDNAME=preforkd.http.1", before_restart));
  CHECK(systemd.count("FDSTOREREMOVE=1") == 0);
  // Workers do not see the master's LISTEN_FDNAMES, only their own.
  const auto env = worker_env(port);
  REQUIRE(env);
  CHECK((*env)["env"]["LISTEN_FDNAMES"] == "http");
  CHECK((*env)["env"]["LISTEN_FDS"] == "1");
}

TEST_CASE("a scale-up stores the new slot's socket - a scale-down removes it", "[systemd][fd_store]") {
  const int port = free_port();
  FakeSystemd systemd;
  auto d = start_daemon(toml({.address = local_address(port), .count = 1}), {{"NOTIFY_SOCKET", systemd.path()}});
  REQUIRE(systemd.wait_for("READY=1"));
  REQUIRE(systemd.wait_for("FDNAME=preforkd.http.0"));
  auto up = run_preforkctl(control_socket(*d), {"scale", "2"});
  INFO(up.out << up.err << d->log());
  REQUIRE(up.code == 0);
  REQUIRE(systemd.wait_for("FDNAME=preforkd.http.1"));
  auto down = run_preforkctl(control_socket(*d), {"scale", "1"});
  REQUIRE(down.code == 0);
  const auto removed = systemd.wait_for("FDSTOREREMOVE=1");
  REQUIRE(removed);
  CHECK(systemd.messages()[*removed].get("FDNAME") == "preforkd.http.1");
  const auto store = store_of(systemd);
  CHECK(store.size() == 1);
  CHECK(store.contains("preforkd.http.0"));
}

TEST_CASE("stored sockets that do not match the config are not taken: a new one is bound", "[systemd][fd_store]") {
  const int port = free_port();
  const int other_port = free_port();
  // Named as slot 0 of the listener, but bound to another port; and one of a .socket unit.
  const int wrong = listening_socket(other_port, true);
  const int foreign = listening_socket(0, false);
  REQUIRE(wrong >= 0);
  REQUIRE(foreign >= 0);
  FakeSystemd systemd;
  auto d = start_daemon(toml({.address = local_address(port), .count = 1}), {{"NOTIFY_SOCKET", systemd.path()}},
                        PassedFds{{wrong, foreign}, "preforkd.http.0:web"});
  const bool ready = systemd.wait_for("READY=1").has_value();
  const auto answer = http_get(port, "/");
  INFO(d->log());
  REQUIRE(ready);
  REQUIRE(answer);
  CHECK(answer->status == 200);
  CHECK(d->count_log("not taking socket 'preforkd.http.0' (fd 3): it is bound to 127.0.0.1:" +
                     std::to_string(other_port) + ", the config says 127.0.0.1:" + std::to_string(port)) == 1);
  CHECK(d->count_log("fd 4 named 'web' is not one of preforkd's stored sockets") == 1);
  CHECK(d->count_log("took") == 0);
  // The wrong socket leaves the store before the new one goes in under the same name.
  const auto removed = systemd.wait_for("FDSTOREREMOVE=1");
  REQUIRE(removed);
  CHECK(systemd.messages()[*removed].get("FDNAME") == "preforkd.http.0");
  REQUIRE(systemd.wait_for("FDSTORE=1", *removed + 1));
  const auto store = store_of(systemd);
  REQUIRE(store.contains("preforkd.http.0"));
  CHECK(bound_port(store.at("preforkd.http.0")) == port);
  ::close(wrong);
  ::close(foreign);
}

TEST_CASE("a stored socket of another mode is not taken and while it holds the port start-up fails",
          "[systemd][fd_store]") {
  const int port = free_port();
  // The config has one socket per slot; the store has a shared one on the same port, which
  // "systemd" keeps open (its FDSTOREREMOVE is not acted on here).
  const int shared = listening_socket(port, false);
  REQUIRE(shared >= 0);
  FakeSystemd systemd;
  auto d = start_daemon(toml({.address = local_address(port), .count = 1}), {{"NOTIFY_SOCKET", systemd.path()}},
                        PassedFds{{shared}, "preforkd.http.shared"});
  const auto code = d->wait_exit();
  INFO(d->log());
  REQUIRE(code);
  CHECK(*code == 1);
  CHECK(d->count_log("not taking socket 'preforkd.http.shared' (fd 3): listener 'http' has one socket per slot "
                     "now, this one was shared") == 1);
  CHECK(d->count_log("failed to bind '127.0.0.1:" + std::to_string(port) + "': address already in use") == 1);
  ::close(shared);
}
