// os/sys_error: the one format of a failed system call's message, "failed to <verb>
// '<what>': <why>", as the os units and preforkctl's client give it.

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <preforkd/ctl/control_client.hpp>
#include <preforkd/os/control_socket_file.hpp>
#include <preforkd/os/sys_error.hpp>

using namespace preforkd;

TEST_CASE("sys error: what failed - where - and why with a lowercase errno text") {
  CHECK(os::errno_text(ENOENT) == "no such file or directory");
  CHECK(os::failed_to("bind", "127.0.0.1:80", "permission denied") ==
        "failed to bind '127.0.0.1:80': permission denied");
  CHECK(os::errno_error("bind", "127.0.0.1:80", EACCES).message == "failed to bind '127.0.0.1:80': permission denied");
}

TEST_CASE("sys error: a control socket whose directory cannot be made names that directory") {
  char tmpl[] = "/tmp/preforkd-sys-error-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/file") << "not a directory\n";
  const auto bound = os::bind_control_socket(dir + "/file/sub/app.sock", 0600, std::nullopt);
  std::filesystem::remove_all(dir);
  REQUIRE_FALSE(bound);
  CHECK(bound.error() == "failed to create control socket directory '" + dir + "/file/sub': not a directory");
}

TEST_CASE("sys error: preforkctl names the socket it cannot connect to") {
  const auto client = ctl::ControlClient::connect("/nonexistent/preforkd.sock",
                                                  std::chrono::steady_clock::now() + std::chrono::seconds(5));
  REQUIRE_FALSE(client);
  CHECK(client.error() == "failed to connect to '/nonexistent/preforkd.sock': no such file or directory");
}
