// Parsing /proc/net/tcp{,6} lines and deciding which listening addresses overlap.

#include <preforkd/core/tcp_table.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

namespace preforkd {
namespace {

// The next whitespace-separated field of `rest`, consumed.
std::string_view next_field(std::string_view& rest) {
  const auto begin = rest.find_first_not_of(" \t");
  if (begin == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(begin);
  const auto end = std::min(rest.find_first_of(" \t"), rest.size());
  const std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end);
  return field;
}

template <class T>
bool parse_hex(std::string_view text, T& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
  return ec == std::errc{} && end == text.data() + text.size();
}

// "0100007F:1F90" (or 32 hex digits before the colon for IPv6).
bool parse_endpoint(std::string_view text, TcpTable table, TcpEndpoint& out) {
  const std::size_t words = table == TcpTable::v4 ? 1 : 4;
  const auto colon = text.find(':');
  if (colon != words * 8 || colon + 5 != text.size()) return false;
  out.table = table;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint32_t word = 0;
    if (!parse_hex(text.substr(i * 8, 8), word)) return false;
    // Printed from the word as it lies in memory: copying it back gives network order.
    std::memcpy(out.bytes.data() + i * 4, &word, sizeof word);
  }
  return parse_hex(text.substr(colon + 1), out.port);
}

bool all_zero(const std::uint8_t* bytes, std::size_t n) {
  return std::all_of(bytes, bytes + n, [](std::uint8_t b) { return b == 0; });
}

bool is_wildcard(const TcpEndpoint& e) { return all_zero(e.bytes.data(), e.table == TcpTable::v4 ? 4 : 16); }

// ::ffff:a.b.c.d: the IPv4 address it maps, as an IPv4 endpoint.
std::optional<TcpEndpoint> mapped_v4(const TcpEndpoint& e) {
  if (e.table != TcpTable::v6 || !all_zero(e.bytes.data(), 10) || e.bytes[10] != 0xff || e.bytes[11] != 0xff)
    return std::nullopt;
  TcpEndpoint v4;
  v4.table = TcpTable::v4;
  v4.port = e.port;
  std::copy(e.bytes.begin() + 12, e.bytes.end(), v4.bytes.begin());
  return v4;
}

bool same_family_overlap(const TcpEndpoint& a, const TcpEndpoint& b) {
  return is_wildcard(a) || is_wildcard(b) || a.bytes == b.bytes;
}

}  // namespace

std::optional<TcpSocketLine> parse_tcp_line(std::string_view line, TcpTable table) {
  std::string_view rest = line;
  const std::string_view slot = next_field(rest);  // "0:"
  if (slot.size() < 2 || slot.back() != ':') return std::nullopt;
  TcpSocketLine out;
  if (!parse_endpoint(next_field(rest), table, out.local)) return std::nullopt;
  next_field(rest);  // remote address
  unsigned state = 0;
  if (!parse_hex(next_field(rest), state)) return std::nullopt;
  out.listening = state == 0x0A;
  out.time_wait = state == 0x06;
  for (int skip = 0; skip < 5; ++skip) next_field(rest);  // queues, timer, retransmits, uid, timeout
  const std::string_view inode = next_field(rest);
  const auto [end, ec] = std::from_chars(inode.data(), inode.data() + inode.size(), out.inode);
  if (inode.empty() || ec != std::errc{} || end != inode.data() + inode.size()) return std::nullopt;
  return out;
}

bool endpoints_overlap(const TcpEndpoint& held, const TcpEndpoint& wanted) {
  if (held.port != wanted.port) return false;
  if (held.table == wanted.table) return same_family_overlap(held, wanted);
  // One side IPv4, the other IPv6: only the IPv6 wildcard or a mapped address reaches IPv4.
  const TcpEndpoint& v6 = held.table == TcpTable::v6 ? held : wanted;
  const TcpEndpoint& v4 = held.table == TcpTable::v6 ? wanted : held;
  if (is_wildcard(v6)) return true;
  if (auto mapped = mapped_v4(v6)) return same_family_overlap(*mapped, v4);
  return false;
}

AddressUse address_use(const std::vector<TcpSocketLine>& table, const TcpEndpoint& wanted) {
  AddressUse use;
  for (const TcpSocketLine& line : table) {
    if (!endpoints_overlap(line.local, wanted)) continue;
    if (line.listening && line.inode != 0) use.listening.push_back(line.inode);
    if (line.time_wait) ++use.time_wait;
  }
  return use;
}

std::optional<std::string> time_wait_cause(const AddressUse& use) {
  if (!use.listening.empty() || use.time_wait == 0) return std::nullopt;
  return std::to_string(use.time_wait) + (use.time_wait == 1 ? " connection" : " connections") +
         " in TIME_WAIT and no listener: connections closed on a socket without SO_REUSEADDR hold the address "
         "until the kernel drops them, 60 s after they closed";
}

}  // namespace preforkd
