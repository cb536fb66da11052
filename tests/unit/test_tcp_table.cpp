// /proc/net/tcp{,6} lines and the overlap rule for listening addresses.

#include <preforkd/core/tcp_table.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <cstring>

using preforkd::endpoints_overlap;
using preforkd::parse_tcp_line;
using preforkd::TcpEndpoint;
using preforkd::TcpTable;

namespace {

TcpEndpoint v4(const char* text, std::uint16_t port) {
  TcpEndpoint e;
  e.table = TcpTable::v4;
  e.port = port;
  in_addr a{};
  REQUIRE(::inet_pton(AF_INET, text, &a) == 1);
  std::memcpy(e.bytes.data(), &a, 4);
  return e;
}

TcpEndpoint v6(const char* text, std::uint16_t port) {
  TcpEndpoint e;
  e.table = TcpTable::v6;
  e.port = port;
  in6_addr a{};
  REQUIRE(::inet_pton(AF_INET6, text, &a) == 1);
  std::memcpy(e.bytes.data(), &a, 16);
  return e;
}

// How the kernel prints an address: each 32-bit word as it lies in memory, with %08X.
std::string kernel_hex(const TcpEndpoint& e) {
  std::string out;
  const std::size_t words = e.table == TcpTable::v4 ? 1 : 4;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint32_t w = 0;
    std::memcpy(&w, e.bytes.data() + i * 4, 4);
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08X", w);
    out += buf;
  }
  char port[6];
  std::snprintf(port, sizeof port, "%04X", e.port);
  return out + ":" + port;
}

}  // namespace

TEST_CASE("tcp_table: a listening IPv4 line gives its address and port and inode") {
  const TcpEndpoint want = v4("127.0.0.1", 8080);
  const std::string line = "   0: " + kernel_hex(want) +
                           " 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1 "
                           "0000000000000000 100 0 0 10 0";
  const auto entry = parse_tcp_line(line, TcpTable::v4);
  REQUIRE(entry);
  CHECK(entry->listening);
  CHECK(entry->inode == 123456);
  CHECK(entry->local == want);
}

TEST_CASE("tcp_table: an IPv6 line and an established one and the header and garbage") {
  const TcpEndpoint want = v6("::1", 443);
  const std::string line = "   3: " + kernel_hex(want) + " 00000000000000000000000000000000:0000 01 00000000:00000000 "
                           "00:00000000 00000000     0        0 42 1 0000000000000000 20 4 30 10 -1";
  const auto entry = parse_tcp_line(line, TcpTable::v6);
  REQUIRE(entry);
  CHECK_FALSE(entry->listening);  // 01: established
  CHECK(entry->inode == 42);
  CHECK(entry->local == want);

  CHECK_FALSE(parse_tcp_line("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
                             "timeout inode",
                             TcpTable::v4));
  CHECK_FALSE(parse_tcp_line("", TcpTable::v4));
  CHECK_FALSE(parse_tcp_line("   0: 0100007F:1F90", TcpTable::v4));
  // An IPv4-width address in the IPv6 table does not parse.
  CHECK_FALSE(parse_tcp_line("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 7 1",
                             TcpTable::v6));
  CHECK_FALSE(parse_tcp_line("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 x7 1",
                             TcpTable::v4));
}

TEST_CASE("tcp_table: which listening addresses take connections for another") {
  struct Row {
    TcpEndpoint held;
    TcpEndpoint wanted;
    bool overlap;
  };
  const Row rows[] = {
      {v4("127.0.0.1", 80), v4("127.0.0.1", 80), true},
      {v4("127.0.0.1", 80), v4("127.0.0.1", 81), false},
      {v4("0.0.0.0", 80), v4("127.0.0.1", 80), true},
      {v4("127.0.0.1", 80), v4("0.0.0.0", 80), true},
      {v4("127.0.0.1", 80), v4("127.0.0.2", 80), false},
      {v6("::", 80), v4("127.0.0.1", 80), true},  // dual-stack wildcard
      {v4("127.0.0.1", 80), v6("::", 80), true},
      {v6("::ffff:127.0.0.1", 80), v4("127.0.0.1", 80), true},
      {v6("::ffff:127.0.0.2", 80), v4("127.0.0.1", 80), false},
      {v6("::1", 80), v4("127.0.0.1", 80), false},
      {v6("::1", 80), v6("::1", 80), true},
      {v6("::1", 80), v6("::", 80), true},
      {v6("::1", 80), v6("::2", 80), false},
  };
  for (const Row& r : rows) {
    INFO(kernel_hex(r.held) << " vs " << kernel_hex(r.wanted));
    CHECK(endpoints_overlap(r.held, r.wanted) == r.overlap);
  }
}

TEST_CASE("tcp table: TIME_WAIT connections and no listener are named as the cause of EADDRINUSE", "[tcp_table]") {
  // A snapshot of /proc/net/tcp: port 8080 (1F90) with two connections in TIME_WAIT (06)
  // and an established one (01), 8081 (1F91) listening (0A), 8082 (1F92) with one TIME_WAIT.
  const char* lines[] = {
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
      "   0: 0100007F:1F90 0100007F:A1B2 06 00000000:00000000 03:00001770 00000000     0        0 0 3",
      "   1: 0100007F:1F90 0100007F:A1B3 06 00000000:00000000 03:00001770 00000000     0        0 0 3",
      "   2: 0100007F:1F90 0100007F:A1B4 01 00000000:00000000 00:00000000 00000000  1000        0 5551 1",
      "   3: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 7777 1",
      "   4: 0100007F:1F91 0100007F:A1B5 06 00000000:00000000 03:00001770 00000000     0        0 0 3",
      "   5: 0100007F:1F92 0100007F:A1B6 06 00000000:00000000 03:00001770 00000000     0        0 0 3",
  };
  std::vector<preforkd::TcpSocketLine> table;
  for (const char* line : lines) {
    if (auto parsed = parse_tcp_line(line, TcpTable::v4)) table.push_back(*parsed);
  }
  REQUIRE(table.size() == 6);
  CHECK(table[0].time_wait);
  CHECK_FALSE(table[0].listening);
  CHECK_FALSE(table[2].time_wait);
  CHECK(table[3].listening);
  CHECK_FALSE(table[3].time_wait);

  const auto at = [&](const char* host, std::uint16_t port) { return preforkd::address_use(table, v4(host, port)); };
  // Two in TIME_WAIT, no listener: they are the cause, on the address and on the wildcard.
  CHECK(at("127.0.0.1", 8080).time_wait == 2);
  CHECK(preforkd::time_wait_cause(at("127.0.0.1", 8080)) ==
        "2 connections in TIME_WAIT and no listener: connections closed on a socket without SO_REUSEADDR hold the "
        "address until the kernel drops them, 60 s after they closed");
  CHECK(preforkd::time_wait_cause(at("0.0.0.0", 8080)).has_value());
  CHECK(preforkd::time_wait_cause(at("127.0.0.1", 8082)).value_or("").starts_with("1 connection in TIME_WAIT"));
  // A listener holds 8081: it is the holder to name, not its TIME_WAIT connection.
  CHECK(at("127.0.0.1", 8081).listening == std::vector<std::uint64_t>{7777});
  CHECK_FALSE(preforkd::time_wait_cause(at("127.0.0.1", 8081)));
  // Another address or port: nothing there.
  CHECK_FALSE(preforkd::time_wait_cause(at("127.0.0.2", 8080)));
  CHECK_FALSE(preforkd::time_wait_cause(at("127.0.0.1", 8083)));
}
