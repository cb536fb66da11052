// [[listen]] socket options named after systemd.socket(5): keep_alive, keep_alive_time,
// keep_alive_interval, keep_alive_probes, receive_buffer, send_buffer, no_delay,
// free_bind, bind_ipv6_only, bind_to_device. Parsing, bounds and the listener kinds they
// apply to (defer_accept and fastopen are in test_cpu_affinity.cpp).

#include <catch2/catch.hpp>
#include <preforkd/core/config.hpp>
#include <preforkd/core/config_diff.hpp>
#include <string>

using namespace std::chrono_literals;
using namespace preforkd;

namespace {

std::string listener(const std::string& address, const std::string& rest) {
  return "[worker]\ncommand = [\"/bin/app\"]\n[[listen]]\naddress = \"" + address + "\"\n" + rest;
}

ConfigResult parse(const std::string& text) {
  return parse_config(text, "app.toml", 2, nullptr);
}

std::string first_error(const ConfigResult& r) {
  return r.errors.empty() ? "" : r.errors.front().to_string();
}

}  // namespace

TEST_CASE("listen socket options: unset they leave the kernel's defaults") {
  const auto r = parse(listener("127.0.0.1:80", ""));
  REQUIRE(r.config);
  const ListenConfig& l = r.config->listeners[0];
  CHECK_FALSE(l.keep_alive);
  CHECK(l.keep_alive_time == 0ms);
  CHECK(l.keep_alive_interval == 0ms);
  CHECK(l.keep_alive_probes == 0);
  CHECK(l.receive_buffer == 0);
  CHECK(l.send_buffer == 0);
  CHECK_FALSE(l.no_delay);
  CHECK_FALSE(l.free_bind);
  CHECK(l.bind_ipv6_only == BindIpv6Only::ipv6_only);
  CHECK(l.bind_to_device.empty());
}

TEST_CASE("listen socket options: each is read into its field") {
  const auto r = parse(listener("[::]:80",
                                "keep_alive = true\nkeep_alive_time = \"10m\"\nkeep_alive_interval = \"15s\"\n"
                                "keep_alive_probes = 4\nreceive_buffer = \"256KiB\"\nsend_buffer = \"1MiB\"\n"
                                "no_delay = true\nfree_bind = true\nbind_ipv6_only = \"both\"\n"
                                "bind_to_device = \"eth0\"\n"));
  INFO(first_error(r));
  REQUIRE(r.config);
  const ListenConfig& l = r.config->listeners[0];
  CHECK(l.keep_alive);
  CHECK(l.keep_alive_time == 10min);
  CHECK(l.keep_alive_interval == 15s);
  CHECK(l.keep_alive_probes == 4);
  CHECK(l.receive_buffer == 256 * 1024);
  CHECK(l.send_buffer == 1024 * 1024);
  CHECK(l.no_delay);
  CHECK(l.free_bind);
  CHECK(l.bind_ipv6_only == BindIpv6Only::both);
  CHECK(l.bind_to_device == "eth0");
  CHECK(parse(listener("[::1]:80", "bind_ipv6_only = \"default\"\n")).config->listeners[0].bind_ipv6_only ==
        BindIpv6Only::system_default);
  CHECK(std::string(to_string(BindIpv6Only::system_default)) == "default");
  CHECK(std::string(to_string(BindIpv6Only::ipv6_only)) == "ipv6-only");
}

TEST_CASE("listen socket options: bounds and types and listener kinds are reported at their place") {
  struct Row {
    std::string address;
    std::string text;
    std::string message;
  };
  const Row rows[] = {
      {"127.0.0.1:80", "keep_alive = 1\n", "app.toml:5:14: listen[0].keep_alive: expected true or false, got 1"},
      {"127.0.0.1:80", "no_delay = \"yes\"\n",
       R"(app.toml:5:12: listen[0].no_delay: expected true or false, got "yes")"},
      {"unix:/run/app.sock", "free_bind = true\n",
       R"(app.toml:5:13: listen[0].free_bind: applies only to TCP listeners, got the unix socket "unix:/run/app.sock")"},
      {"unix:/run/app.sock", "keep_alive = true\n",
       R"(app.toml:5:14: listen[0].keep_alive: applies only to TCP listeners, got the unix socket "unix:/run/app.sock")"},
      {"unix:/run/app.sock", "send_buffer = \"64KiB\"\n",
       R"(app.toml:5:15: listen[0].send_buffer: applies only to TCP listeners, got the unix socket "unix:/run/app.sock")"},
      {"127.0.0.1:80", "keep_alive_time = \"0s\"\n",
       "app.toml:5:19: listen[0].keep_alive_time: must be whole seconds from 1s to 2h, got 0s"},
      {"127.0.0.1:80", "keep_alive_time = \"2h1s\"\n",
       "app.toml:5:19: listen[0].keep_alive_time: must be whole seconds from 1s to 2h, got 2h1s"},
      {"127.0.0.1:80", "keep_alive_interval = \"1500ms\"\n",
       "app.toml:5:23: listen[0].keep_alive_interval: must be whole seconds from 1s to 2h, got 1.5s"},
      {"127.0.0.1:80", "keep_alive_interval = 30\n",
       R"(app.toml:5:23: listen[0].keep_alive_interval: expected a duration with a unit such as "30s", got 30)"},
      {"127.0.0.1:80", "keep_alive_probes = 0\n",
       "app.toml:5:21: listen[0].keep_alive_probes: must be an integer from 1 to 127, got 0"},
      {"127.0.0.1:80", "receive_buffer = \"2KiB\"\n",
       R"(app.toml:5:18: listen[0].receive_buffer: must be from 4KiB to 512MiB, got "2KiB")"},
      {"127.0.0.1:80", "receive_buffer = \"513MiB\"\n",
       R"(app.toml:5:18: listen[0].receive_buffer: must be from 4KiB to 512MiB, got "513MiB")"},
      {"127.0.0.1:80", "send_buffer = 65536\n",
       R"(app.toml:5:15: listen[0].send_buffer: expected a size with a unit such as "256KiB", got 65536)"},
      {"127.0.0.1:80", "bind_ipv6_only = \"both\"\n",
       R"(app.toml:5:18: listen[0].bind_ipv6_only: applies only to IPv6 listeners such as "[::]:80", got "127.0.0.1:80")"},
      {"unix:/run/app.sock", "bind_ipv6_only = \"both\"\n",
       R"(app.toml:5:18: listen[0].bind_ipv6_only: applies only to IPv6 listeners such as "[::]:80", got "unix:/run/app.sock")"},
      {"[::]:80", "bind_ipv6_only = \"v6only\"\n",
       R"(app.toml:5:18: listen[0].bind_ipv6_only: must be one of "default", "both" or "ipv6-only", got "v6only")"},
      {"127.0.0.1:80", "bind_to_device = \"sixteen-chars-00\"\n",
       R"(app.toml:5:18: listen[0].bind_to_device: must be an interface name of 1 to 15 characters without '/', ':' or spaces, got "sixteen-chars-00")"},
      {"127.0.0.1:80", "bind_to_device = \"eth0:1\"\n",
       R"(app.toml:5:18: listen[0].bind_to_device: must be an interface name of 1 to 15 characters without '/', ':' or spaces, got "eth0:1")"},
      {"127.0.0.1:80", "bind_to_device = \"\"\n",
       R"(app.toml:5:18: listen[0].bind_to_device: must be an interface name of 1 to 15 characters without '/', ':' or spaces, got "")"},
      {"127.0.0.1:80", "keepalive = true\n", "listen[0].keepalive"},
  };
  for (const Row& row : rows) {
    INFO(row.address << " " << row.text);
    const auto r = parse(listener(row.address, row.text));
    CHECK_FALSE(r.config);
    const std::string error = first_error(r);
    if (row.message.rfind("app.toml:", 0) == 0) {
      CHECK(error == row.message);
    } else {
      CHECK(error.find(row.message) != std::string::npos);
      CHECK(error.find("keep_alive") != std::string::npos);  // the suggestion for a misspelt key
    }
  }
}

TEST_CASE("listen socket options: a change to any of them is a listener change for a reload") {
  const auto a = parse(listener("127.0.0.1:80", ""));
  const auto b = parse(listener("127.0.0.1:80", "send_buffer = \"64KiB\"\n"));
  const auto c = parse(listener("127.0.0.1:80", "bind_to_device = \"lo\"\n"));
  REQUIRE(a.config);
  REQUIRE(b.config);
  REQUIRE(c.config);
  CHECK(same_socket_options(a.config->listeners[0], a.config->listeners[0]));
  CHECK_FALSE(same_socket_options(a.config->listeners[0], b.config->listeners[0]));
  CHECK_FALSE(same_socket_options(a.config->listeners[0], c.config->listeners[0]));
  CHECK(diff_configs(*a.config, *b.config).listeners_changed);
  CHECK(diff_configs(*a.config, *c.config).listeners_changed);
  CHECK_FALSE(diff_configs(*a.config, *a.config).listeners_changed);
}

TEST_CASE("listen non_blocking: off by default and a bool on any listener and a listener change for a reload") {
  const auto unset = parse(listener("127.0.0.1:80", ""));
  REQUIRE(unset.config);
  CHECK_FALSE(unset.config->listeners[0].non_blocking);  // blocking, as systemd hands sockets
  const auto tcp = parse(listener("127.0.0.1:80", "non_blocking = true\n"));
  INFO(first_error(tcp));
  REQUIRE(tcp.config);
  CHECK(tcp.config->listeners[0].non_blocking);
  const auto unix_socket = parse(listener("unix:/run/app.sock", "non_blocking = true\n"));
  REQUIRE(unix_socket.config);
  CHECK(unix_socket.config->listeners[0].non_blocking);
  CHECK(first_error(parse(listener("127.0.0.1:80", "non_blocking = \"yes\"\n"))) ==
        R"(app.toml:5:16: listen[0].non_blocking: expected true or false, got "yes")");
  CHECK(first_error(parse(listener("127.0.0.1:80", "non_blocking = 1\n"))) ==
        "app.toml:5:16: listen[0].non_blocking: expected true or false, got 1");
  CHECK(first_error(parse(listener("127.0.0.1:80", "nonblocking = true\n"))).find("non_blocking") !=
        std::string::npos);
  CHECK_FALSE(same_socket_options(unset.config->listeners[0], tcp.config->listeners[0]));
  CHECK(diff_configs(*unset.config, *tcp.config).listeners_changed);
}
