// [[listen]] defer_accept, fastopen and the options named after systemd.socket(5)
// (keep_alive*, receive_buffer, send_buffer, no_delay, free_bind, bind_ipv6_only,
// bind_to_device): set on every slot's socket (read back with getsockopt by the worker
// that got it, on fd 3), shown in status, changed by a reload, and refused with
// file:line:col for a unix socket or a bad value.

#include <catch2/catch.hpp>
#include <map>
#include <sstream>
#include <string>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control_helpers.hpp"
#include "../support/skip.hpp"

using namespace bt;

namespace {

std::string sockopt_config(int port, const std::string& options) {
  return toml({.address = local_address(port), .count = 2, .command = {fixture("sockopt_worker")}}) + options;
}

std::string readback(int generation, int defer, int fastopen) {
  return "generation " + std::to_string(generation) + ": defer_accept=" + std::to_string(defer) +
         " fastopen=" + std::to_string(fastopen);
}

using Options = std::map<std::string, std::string>;

// The sockopt_worker lines of `generation` in the log, each parsed to option -> value.
std::vector<Options> readbacks(const Daemon& d, int generation) {
  std::vector<Options> out;
  std::istringstream log(d.log());
  const std::string marker = "generation " + std::to_string(generation) + ": ";
  for (std::string line; std::getline(log, line);) {
    const auto from = line.find(marker);
    const auto to = line.rfind(" end");
    if (line.find("sockopt fd ") == std::string::npos || from == std::string::npos || to == std::string::npos ||
        to < from)
      continue;
    std::istringstream words(line.substr(from + marker.size(), to - from - marker.size()));
    Options o;
    for (std::string word; words >> word;) {
      const auto eq = word.find('=');
      if (eq != std::string::npos) o[word.substr(0, eq)] = word.substr(eq + 1);
    }
    out.push_back(std::move(o));
  }
  return out;
}

// How many workers of `generation` reported every option of `expected` with that value.
int workers_reporting(const Daemon& d, int generation, const Options& expected) {
  int n = 0;
  for (const Options& o : readbacks(d, generation)) {
    bool all = true;
    for (const auto& [key, value] : expected) {
      const auto it = o.find(key);
      all = all && it != o.end() && it->second == value;
    }
    n += all ? 1 : 0;
  }
  return n;
}

// Whether this machine can listen on [::1] (a container may have no IPv6 at all).
bool ipv6_loopback_works() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TEST_CASE("defer_accept and fastopen are set on every worker's socket and shown in status", "[listen]") {
  const int port = free_port();
  Daemon d(sockopt_config(port, "defer_accept = \"1s\"\nfastopen = 16\n"));
  INFO(d.log());
  const auto s = wait_workers_ready(d, 2, 0);
  REQUIRE(s);
  // One line per worker, each from its own slot's socket.
  REQUIRE(wait_until([&] { return d.count_log(readback(0, 1, 16)) == 2; }));
  REQUIRE((*s)["listeners"].size() == 1);
  CHECK((*s)["listeners"][0].value("defer_accept_s", -1) == 1);
  CHECK((*s)["listeners"][0].value("fastopen", -1) == 16);
  const CtlResult table = ctl(d, {"status"});
  CHECK(table.out.find("defer_accept 1s, fastopen 16") != std::string::npos);
  stop_cleanly(d);
}

TEST_CASE("without defer_accept and fastopen both options are off", "[listen]") {
  const int port = free_port();
  Daemon d(sockopt_config(port, ""));
  INFO(d.log());
  REQUIRE(wait_workers_ready(d, 2, 0));
  REQUIRE(wait_until([&] { return d.count_log(readback(0, 0, 0)) == 2; }));
  stop_cleanly(d);
}

TEST_CASE("a reload that changes defer_accept and fastopen applies them to the held sockets", "[listen][control]") {
  const int port = free_port();
  Daemon d(sockopt_config(port, "defer_accept = \"1s\"\nfastopen = 16\n"));
  REQUIRE(wait_workers_ready(d, 2, 0));
  REQUIRE(wait_until([&] { return d.count_log(readback(0, 1, 16)) == 2; }));
  rewrite_config(d, sockopt_config(port, "fastopen = 32\n"));
  const CtlResult r = ctl(d, {"reload"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  CHECK(r.exit_code == 0);
  const auto s = wait_workers_ready(d, 2, 1);
  REQUIRE(s);
  // The new workers got the same kernel sockets (the port never closed), with the new options.
  CHECK(wait_until([&] { return d.count_log(readback(1, 0, 32)) == 2; }));
  CHECK((*s)["listeners"][0].value("defer_accept_s", -1) == 0);
  CHECK((*s)["listeners"][0].value("fastopen", -1) == 32);
  stop_cleanly(d);
}

TEST_CASE("defer_accept and fastopen are refused with their place for a unix socket or a bad value", "[listen]") {
  struct Case {
    std::string address;
    std::string options;
    std::string expected;
  };
  TempDir dir;
  const std::string unix_address = "unix:" + dir.file("app.sock");
  const std::string tcp = local_address(free_port());
  const Case cases[] = {
      {unix_address, "defer_accept = \"1s\"\n", "listen[0].defer_accept: applies only to TCP listeners"},
      {unix_address, "fastopen = 4\n", "listen[0].fastopen: applies only to TCP listeners"},
      {tcp, "fastopen = -1\n", "listen[0].fastopen: must be an integer from 0 to 65535, got -1"},
      {tcp, "defer_accept = \"2h\"\n", "listen[0].defer_accept: must be from 0s to 1h"},
      {tcp, "defer_accept = 5\n", "listen[0].defer_accept:"},
  };
  for (const Case& c : cases) {
    Daemon d(toml({.address = c.address, .count = 1}) + c.options, {"--check"});
    INFO(c.options << d.log());
    CHECK(d.wait_exit() == 78);
    CHECK(d.log().find("app.toml:") != std::string::npos);
    CHECK(d.log().find(c.expected) != std::string::npos);
  }
}

// The kernel doubles SO_RCVBUF/SO_SNDBUF; 64KiB and 96KiB stay under the smallest
// net.core.rmem_max/wmem_max a distribution ships (208KiB), so they read back doubled
// with or without CAP_NET_ADMIN.
TEST_CASE("each systemd-named listener option is set on every worker's socket", "[listen]") {
  struct Row {
    std::string option;   // the TOML line
    Options readback;     // what getsockopt reports on both workers' fd 3
    std::string json_key;
    nlohmann::json json_value;
    std::string table;    // in the status table's MODE column
  };
  const Row rows[] = {
      {"keep_alive = true", {{"keep_alive", "1"}}, "keep_alive", true, ", keep_alive"},
      {"keep_alive_time = \"1m\"", {{"keep_alive_time", "60"}}, "keep_alive_time_s", 60, ", keep_alive_time 60s"},
      {"keep_alive_interval = \"10s\"", {{"keep_alive_interval", "10"}}, "keep_alive_interval_s", 10,
       ", keep_alive_interval 10s"},
      {"keep_alive_probes = 5", {{"keep_alive_probes", "5"}}, "keep_alive_probes", 5, ", keep_alive_probes 5"},
      {"receive_buffer = \"64KiB\"", {{"receive_buffer", "131072"}}, "receive_buffer", 65536,
       ", receive_buffer 64KiB"},
      {"send_buffer = \"96KiB\"", {{"send_buffer", "196608"}}, "send_buffer", 98304, ", send_buffer 96KiB"},
      {"no_delay = true", {{"no_delay", "1"}}, "no_delay", true, ", no_delay"},
      {"free_bind = true", {{"free_bind", "1"}}, "free_bind", true, ", free_bind"},
      {"bind_to_device = \"lo\"", {{"bind_to_device", "lo"}}, "bind_to_device", "lo", ", bind_to_device lo"},
  };
  for (const Row& row : rows) {
    DYNAMIC_SECTION(row.option) {
      const int port = free_port();
      Daemon d(sockopt_config(port, row.option + "\n"));
      const auto s = wait_workers_ready(d, 2, 0);
      const bool both = wait_until([&] { return workers_reporting(d, 0, row.readback) == 2; });
      INFO("log after the wait: " << d.log());
      REQUIRE(s);
      CHECK(both);
      REQUIRE((*s)["listeners"].size() == 1);
      CHECK((*s)["listeners"][0][row.json_key] == row.json_value);
      const CtlResult table = ctl(d, {"status"});
      INFO("status: " << table.out);
      CHECK(table.out.find(row.table) != std::string::npos);
      stop_cleanly(d);
    }
  }
}

TEST_CASE("without the systemd-named options the sockets keep the kernel's defaults", "[listen]") {
  const int port = free_port();
  Daemon d(sockopt_config(port, ""));
  const auto s = wait_workers_ready(d, 2, 0);
  const Options off{{"keep_alive", "0"}, {"no_delay", "0"}, {"free_bind", "0"}, {"bind_to_device", "-"}};
  const bool both = wait_until([&] { return workers_reporting(d, 0, off) == 2; });
  INFO("log after the wait: " << d.log());
  REQUIRE(s);
  CHECK(both);
  const auto& l = (*s)["listeners"][0];
  CHECK(l.value("keep_alive", true) == false);
  CHECK(l.value("keep_alive_time_s", -1) == 0);
  CHECK(l.value("receive_buffer", -1) == 0);
  CHECK(l.value("send_buffer", -1) == 0);
  CHECK(l.value("bind_ipv6_only", "?").empty());  // not an IPv6 listener
  CHECK(l.value("bind_to_device", "?").empty());
  stop_cleanly(d);
}

TEST_CASE("a reload applies changed keep-alive and buffer and no_delay options to the held sockets",
          "[listen][control]") {
  const int port = free_port();
  Daemon d(sockopt_config(port, "keep_alive = true\nreceive_buffer = \"64KiB\"\nno_delay = true\n"));
  REQUIRE(wait_workers_ready(d, 2, 0));
  const bool first = wait_until([&] {
    return workers_reporting(d, 0, {{"keep_alive", "1"}, {"receive_buffer", "131072"}, {"no_delay", "1"}}) == 2;
  });
  INFO("log: " << d.log());
  REQUIRE(first);
  rewrite_config(d, sockopt_config(port, "keep_alive_probes = 3\nreceive_buffer = \"96KiB\"\n"));
  const CtlResult r = ctl(d, {"reload"});
  const auto s = wait_workers_ready(d, 2, 1);
  const Options after{{"keep_alive", "0"}, {"keep_alive_probes", "3"}, {"receive_buffer", "196608"}, {"no_delay", "0"}};
  const bool applied = wait_until([&] { return workers_reporting(d, 1, after) == 2; });
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog after the wait: " << d.log());
  CHECK(r.exit_code == 0);
  REQUIRE(s);
  CHECK(applied);
  CHECK((*s)["listeners"][0].value("keep_alive_probes", -1) == 3);
  CHECK((*s)["listeners"][0].value("receive_buffer", -1) == 98304);
  CHECK((*s)["listeners"][0].value("no_delay", true) == false);
  stop_cleanly(d);
}

TEST_CASE("a reload that would change a held socket's binding or unset a size is refused and nothing changes",
          "[listen][control]") {
  struct Case {
    std::string before;
    std::string after;
    std::string why;
  };
  const Case cases[] = {
      {"bind_to_device = \"lo\"\n", "", "bind_to_device cannot change on a bound socket"},
      {"receive_buffer = \"64KiB\"\n", "", "receive_buffer cannot go back to the kernel's default"},
      {"keep_alive_time = \"1m\"\n", "keep_alive_time = \"2m\"\nbind_to_device = \"lo\"\n",
       "bind_to_device cannot change on a bound socket"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.before << " -> " << c.after) {
      const int port = free_port();
      Daemon d(sockopt_config(port, c.before));
      REQUIRE(wait_workers_ready(d, 2, 0));
      rewrite_config(d, sockopt_config(port, c.after));
      const CtlResult r = ctl(d, {"reload"});
      const auto s = status_of(d);
      INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
      CHECK(r.exit_code == 1);
      CHECK((r.out + r.err).find(c.why) != std::string::npos);
      REQUIRE(s);
      CHECK((*s)["master"].value("generation", -1) == 0);
      stop_cleanly(d);
    }
  }
}

TEST_CASE("bind_ipv6_only sets IPV6_V6ONLY on an IPv6 listener - IPv6 only by default", "[listen]") {
  if (!ipv6_loopback_works()) {
    SKIP_OR_FAIL("this machine cannot listen on [::1]");
  }
  struct Case {
    std::string option;
    std::string v6only;
    std::string shown;
  };
  const Case cases[] = {{"", "1", "ipv6-only"}, {"bind_ipv6_only = \"both\"\n", "0", "both"},
                        {"bind_ipv6_only = \"ipv6-only\"\n", "1", "ipv6-only"}};
  for (const Case& c : cases) {
    DYNAMIC_SECTION("'" << c.option << "'") {
      // The wildcard: binding a specific IPv6 address makes a socket IPv6 only whatever was set.
      const std::string address = "[::]:" + std::to_string(free_port());
      Daemon d(toml({.address = address, .count = 2, .command = {fixture("sockopt_worker")}}) + c.option +
               "free_bind = true\n");
      const auto s = wait_workers_ready(d, 2, 0);
      const bool both =
          wait_until([&] { return workers_reporting(d, 0, {{"ipv6_only", c.v6only}, {"free_bind", "1"}}) == 2; });
      INFO("log after the wait: " << d.log());
      REQUIRE(s);
      CHECK(both);
      CHECK((*s)["listeners"][0].value("bind_ipv6_only", "?") == c.shown);
      stop_cleanly(d);
    }
  }
}

TEST_CASE("the systemd-named options are refused with their place for a wrong type or bound or listener",
          "[listen]") {
  struct Case {
    std::string address;
    std::string options;
    std::string expected;
  };
  TempDir dir;
  const std::string unix_address = "unix:" + dir.file("app.sock");
  const std::string tcp = local_address(free_port());
  const Case cases[] = {
      {unix_address, "keep_alive = true\n", "listen[0].keep_alive: applies only to TCP listeners"},
      {unix_address, "receive_buffer = \"64KiB\"\n", "listen[0].receive_buffer: applies only to TCP listeners"},
      {unix_address, "bind_to_device = \"lo\"\n", "listen[0].bind_to_device: applies only to TCP listeners"},
      {tcp, "bind_ipv6_only = \"both\"\n", "listen[0].bind_ipv6_only: applies only to IPv6 listeners"},
      {tcp, "no_delay = \"yes\"\n", "listen[0].no_delay: expected true or false, got \"yes\""},
      {tcp, "keep_alive_probes = 128\n", "listen[0].keep_alive_probes: must be an integer from 1 to 127, got 128"},
      {tcp, "keep_alive_time = \"1500ms\"\n", "listen[0].keep_alive_time: must be whole seconds from 1s to 2h"},
      {tcp, "send_buffer = \"1GiB\"\n", "listen[0].send_buffer: must be from 4KiB to 512MiB"},
      {tcp, "receive_buffer = 65536\n", "listen[0].receive_buffer: expected a size with a unit"},
      {tcp, "bind_to_device = \"a-very-long-name0\"\n", "listen[0].bind_to_device: must be an interface name"},
  };
  for (const Case& c : cases) {
    Daemon d(toml({.address = c.address, .count = 1}) + c.options, {"--check"});
    CHECK(d.wait_exit() == 78);
    INFO(c.options << d.log());
    CHECK(d.log().find("app.toml:") != std::string::npos);
    CHECK(d.log().find(c.expected) != std::string::npos);
  }
}
