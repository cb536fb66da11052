// The journal stream's two facts: JOURNAL_STREAM names the file fstat() describes, and a
// line's "<N>" priority prefix.

#include <preforkd/core/journal_stream.hpp>

#include <catch2/catch.hpp>

#include <optional>

#include <string>

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace preforkd;

TEST_CASE("journal stream: JOURNAL_STREAM matches only the device and inode it names") {
  struct Row {
    const char* value;
    bool matches;
  };
  // fstat() said device 2049, inode 12345.
  const Row rows[] = {
      {"2049:12345", true},
      {"2049:12346", false},  // another inode: stderr was redirected
      {"2050:12345", false},  // another device
      {"", false},
      {"2049", false},
      {":12345", false},
      {"2049:", false},
      {"2049:12345 ", false},
      {" 2049:12345", false},
      {"+2049:12345", false},
      {"-2049:12345", false},
      {"2049:12345:1", false},
      {"0x801:12345", false},
      {"99999999999999999999999:12345", false},  // beyond 64 bits
  };
  for (const Row& r : rows) {
    INFO("JOURNAL_STREAM=" << r.value);
    CHECK(is_journal_stream(r.value, 2049, 12345) == r.matches);
  }
  CHECK(is_journal_stream("18446744073709551615:1", 18446744073709551615ULL, 1));
}

TEST_CASE("journal stream: a socket's fstat matches the JOURNAL_STREAM made from it") {
  // As systemd makes it: the stream socket's st_dev and st_ino in decimal.
  int pair[2] = {-1, -1};
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  struct stat journal {};
  struct stat other {};
  REQUIRE(::fstat(pair[0], &journal) == 0);
  REQUIRE(::fstat(pair[1], &other) == 0);
  const std::string value = std::to_string(journal.st_dev) + ":" + std::to_string(journal.st_ino);
  CHECK(is_journal_stream(value, journal.st_dev, journal.st_ino));
  CHECK_FALSE(is_journal_stream(value, other.st_dev, other.st_ino));
  ::close(pair[0]);
  ::close(pair[1]);
}

TEST_CASE("journal stream: priority prefixes are <0> to <7>") {
  CHECK(priority_prefix(SyslogPriority::emerg) == "<0>");
  CHECK(priority_prefix(SyslogPriority::crit) == "<2>");
  CHECK(priority_prefix(SyslogPriority::err) == "<3>");
  CHECK(priority_prefix(SyslogPriority::warning) == "<4>");
  CHECK(priority_prefix(SyslogPriority::notice) == "<5>");
  CHECK(priority_prefix(SyslogPriority::info) == "<6>");
  CHECK(priority_prefix(SyslogPriority::debug) == "<7>");
}

TEST_CASE("journal stream: a line's own priority prefix is split off") {
  struct Row {
    const char* line;
    std::optional<SyslogPriority> priority;
    const char* text;
  };
  const Row rows[] = {
      {"<3>disk full", SyslogPriority::err, "disk full"},
      {"<0>", SyslogPriority::emerg, ""},
      {"<7>  indented", SyslogPriority::debug, "  indented"},
      {"<8>not a priority", std::nullopt, "<8>not a priority"},
      {"<30>with a facility", std::nullopt, "<30>with a facility"},
      {"<3 no closing", std::nullopt, "<3 no closing"},
      {" <3>not first", std::nullopt, " <3>not first"},
      {"<>", std::nullopt, "<>"},
      {"plain", std::nullopt, "plain"},
      {"", std::nullopt, ""},
  };
  for (const Row& r : rows) {
    INFO("line: " << r.line);
    const PrefixedLine got = split_priority_prefix(r.line);
    CHECK(got.priority == r.priority);
    CHECK(got.text == r.text);
  }
}
