// os/read_file: a whole file to EOF, within a bound, errors in the one format.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <preforkd/os/read_file.hpp>
#include <string>

using namespace preforkd;

TEST_CASE("read file: a /proc file that reports a size of 0 is read to its end") {
  const auto text = os::read_file("/proc/self/stat");
  REQUIRE(text);
  CHECK(text->starts_with(std::to_string(::getpid()) + " ("));
  CHECK(text->ends_with("\n"));
}

TEST_CASE("read file: a missing file is an error naming it") {
  const auto text = os::read_file("/nonexistent/preforkd-file");
  REQUIRE_FALSE(text);
  CHECK(text.error() == "failed to open '/nonexistent/preforkd-file': no such file or directory");
}

TEST_CASE("read file: a file larger than its bound is an error and not a part of it") {
  char name[] = "/tmp/preforkd-read-file-XXXXXX";
  const int fd = ::mkstemp(name);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(name) << std::string(10000, 'x');
  const auto whole = os::read_file(name, 10000);
  const auto cut = os::read_file(name, 9999);
  std::remove(name);
  REQUIRE(whole);
  CHECK(whole->size() == 10000);
  REQUIRE_FALSE(cut);
  CHECK(cut.error() == "failed to read '" + std::string(name) + "': larger than 9999 bytes");
}

TEST_CASE("read file: a directory cannot be read and says why") {
  const auto text = os::read_file("/proc/self");
  REQUIRE_FALSE(text);
  CHECK(text.error() == "failed to read '/proc/self': is a directory");
}
