// lighttpd from Debian's package, unmodified and socket-activated, as the target of two
// workers: both take their listening socket from preforkd (fd 3, bound by the master,
// lighttpd binds nothing itself) and both serve requests.

#include "harness.hpp"
#include "systemd_helpers.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <poll.h>
#include <set>
#include <sstream>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace bt;
using namespace bt::sd;

namespace {

const std::string lighttpd_bin = "/usr/sbin/lighttpd";

// The "Server:" header and body of GET `path` on a fresh connection; nullopt on error.
struct Answer {
  int status = 0;
  std::string server;
  std::string body;
};
std::optional<Answer> get_with_server(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string data;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) data.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  const auto head_end = data.find("\r\n\r\n");
  if (data.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) return std::nullopt;
  Answer out;
  out.status = std::atoi(data.c_str() + 9);
  out.body = data.substr(head_end + 4);
  std::istringstream head(data.substr(0, head_end));
  for (std::string line; std::getline(head, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > 8 && strncasecmp(line.c_str(), "Server: ", 8) == 0) out.server = line.substr(8);
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string link_target(const std::string& path) {
  char buf[256] = {};
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// Inodes of the TCP sockets listening on 127.0.0.1:<port>, from /proc/net/tcp.
std::set<std::string> listening_inodes(int port) {
  std::set<std::string> out;
  std::istringstream in(read_text("/proc/net/tcp"));
  std::string line;
  std::getline(in, line);  // header
  char want[32];
  std::snprintf(want, sizeof want, "0100007F:%04X", port);
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
    f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
    if (local == want && state == "0A") out.insert(inode);
  }
  return out;
}

std::string env_var(pid_t pid, const std::string& name) {
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/environ"));
  for (std::string entry; std::getline(in, entry, '\0');)
    if (entry.rfind(name + "=", 0) == 0) return entry.substr(name.size() + 1);
  return {};
}

}  // namespace

TEST_CASE("lighttpd unmodified and socket-activated serves from two workers", "[systemd]") {
  if (::access(lighttpd_bin.c_str(), X_OK) != 0)
    FAIL(lighttpd_bin << " is missing: install Debian's lighttpd package (scripts/install-deps.sh does)");

  const int port = free_port();
  TempDir site;
  ::mkdir(site.file("www").c_str(), 0755);
  const std::string page = "served by lighttpd under preforkd\n";
  site.write("www/index.html", page);
  // As FACTS.md says: bind/port match the inherited socket (or lighttpd binds its own and
  // fails), no pid-file, no privilege drop (tests run as root). server.tag reads the
  // worker's slot from the environment, so an answer names the worker that gave it.
  site.write("lighttpd.conf",
             "server.document-root = " + toml_string(site.file("www")) + "\n" +
                 "server.bind = \"127.0.0.1\"\n"
                 "server.port = " + std::to_string(port) + "\n" +
                 "server.systemd-socket-activation = \"enable\"\n"
                 "server.username = \"\"\n"
                 "server.groupname = \"\"\n"
                 "server.errorlog = " + toml_string(site.file("error.log")) + "\n" +
                 "index-file.names = ( \"index.html\" )\n"
                 "mimetype.assign = ( \".html\" => \"text/html\" )\n"
                 "server.tag = \"lighttpd-slot-\" + env.PREFORK_WORKER_ID\n");

  Daemon d(toml({.address = local_address(port),
                 .count = 2,
                 .command = {lighttpd_bin, "-D", "-f", site.file("lighttpd.conf")}}));

  // Both workers answer: fresh connections spread over the two per-worker sockets.
  std::map<std::string, int> by_server;
  int failed = 0;
  const bool both = wait_until([&] {
    const auto a = get_with_server(port, "/");
    if (!a || a->status != 200 || a->body != page) {
      ++failed;
      return false;
    }
    ++by_server[a->server];
    return by_server.size() >= 2;
  });
  INFO("lighttpd error log:\n" << read_text(site.file("error.log")) << "\npreforkd log:\n" << d.log());
  INFO("failed requests while waiting: " << failed);
  REQUIRE(both);
  CHECK(by_server.size() == 2);
  CHECK(by_server.contains("lighttpd-slot-0"));
  CHECK(by_server.contains("lighttpd-slot-1"));

  // Two lighttpd processes, one per slot, each with its own listening socket as fd 3;
  // those are the master's sockets, the only ones listening on the port.
  const auto procs = processes_of_master(d.pid());
  REQUIRE(procs.size() == 2);
  const auto listeners = listening_inodes(port);
  CHECK(listeners.size() == 2);
  std::set<std::string> slots, fd3s;
  for (pid_t pid : procs) {
    INFO("pid " << pid);
    CHECK(link_target("/proc/" + std::to_string(pid) + "/exe") == lighttpd_bin);
    CHECK(env_var(pid, "LISTEN_PID") == std::to_string(pid));
    slots.insert(env_var(pid, "PREFORK_WORKER_ID"));
    const std::string fd3 = link_target("/proc/" + std::to_string(pid) + "/fd/3");
    REQUIRE(fd3.rfind("socket:[", 0) == 0);
    const std::string inode = fd3.substr(8, fd3.size() - 9);
    CHECK(listeners.contains(inode));
    fd3s.insert(inode);
  }
  CHECK(slots == std::set<std::string>{"0", "1"});
  CHECK(fd3s.size() == 2);  // reuseport: a socket per worker

  // Neither worker was restarted on the way (no bind failure, no crash).
  const auto status = status_json(d);
  REQUIRE(status);
  for (const auto& w : (*status)["workers"]) {
    CHECK(w["restarts"] == 0);
    CHECK(w["state"] == "ready");
  }

  d.signal(SIGTERM);
  CHECK(d.wait_exit() == 0);
  CHECK(no_process_left(d.pid()));
}
