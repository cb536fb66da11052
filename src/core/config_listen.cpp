// [[listen]]: the sockets preforkd opens and hands to every worker as fds 3, 4, ...

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <preforkd/core/limits.hpp>
#include <string>
#include <tuple>

#include "config_reader.hpp"

namespace preforkd::config_detail {
namespace {

constexpr std::array<std::string_view, 19> listen_keys{
    "name", "address", "mode", "balance", "backlog", "defer_accept", "fastopen", "fail_fast_after", "non_blocking",
    // Named after systemd.socket(5)'s settings, in snake_case.
    "keep_alive", "keep_alive_time", "keep_alive_interval", "keep_alive_probes", "receive_buffer", "send_buffer",
    "no_delay", "free_bind", "bind_ipv6_only", "bind_to_device"};
constexpr std::array<Choice<ListenMode>, 2> listen_modes{
    {{"reuseport", ListenMode::reuseport}, {"shared", ListenMode::shared}}};
constexpr std::array<Choice<ListenBalance>, 2> listen_balances{
    {{"load", ListenBalance::load}, {"hash", ListenBalance::hash}}};
constexpr std::size_t max_name = 255;
constexpr std::int64_t max_backlog = 65535;
// TCP_DEFER_ACCEPT counts SYN-ACK retransmissions; the kernel caps it near 2 hours.
constexpr Duration max_defer_accept = std::chrono::hours(1);
// The kernel caps a TFO queue at net.core.somaxconn; 65535 is that sysctl's own limit.
constexpr std::int64_t max_fastopen = 65535;
constexpr std::array<Choice<BindIpv6Only>, 3> ipv6_only_choices{{{"default", BindIpv6Only::system_default},
                                                                 {"both", BindIpv6Only::both},
                                                                 {"ipv6-only", BindIpv6Only::ipv6_only}}};
// TCP_KEEPIDLE and TCP_KEEPINTVL take whole seconds (the kernel allows up to 32767 s);
// 2h is net.ipv4.tcp_keepalive_time's own default, beyond which keep-alive finds little.
constexpr Duration min_keep_alive = std::chrono::seconds(1);
constexpr Duration max_keep_alive = std::chrono::hours(2);
constexpr std::int64_t max_keep_alive_probes = 127;  // TCP_KEEPCNT's kernel limit
// SO_RCVBUF/SO_SNDBUF: the kernel doubles the value and keeps it under INT_MAX, and
// raises anything below about 4KiB to its own minimum (which would not read back).
constexpr std::uint64_t min_buffer = 4 * 1024;
constexpr std::uint64_t max_buffer = 512 * 1024 * 1024;
constexpr std::size_t max_device_name = 15;  // IFNAMSIZ - 1

// Names travel in LISTEN_FDNAMES, which is ':'-separated: keep them to a safe alphabet.
bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= max_name && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

// What identifies the socket an address binds: equal for "*:80" and "0.0.0.0:80".
auto socket_key(const Address& a) {
  return std::make_tuple(a.family, a.host, a.port, a.path);
}

// One listener read from the file, with the places its later checks report at.
struct Entry {
  ListenConfig listen;
  std::string prefix;  // "listen[1]"
  Field name_field;    // the name, or the table when the name is defaulted
  Field address_field;
  bool name_ok = true;  // the uniqueness checks skip what is already reported as wrong
  bool address_ok = true;
};

void read_name(const Section& s, std::size_t index, Entry& e) {
  e.name_field = s.field("name");
  if (e.name_field.node == nullptr) {
    e.name_field.node = &s.table();
    e.listen.name = fmt::format("listen{}", index);
    return;
  }
  const auto name = read_string(s.diag(), e.name_field);
  if (!name) {
    e.name_ok = false;
  } else if (!valid_name(*name)) {
    report(s.diag(), e.name_field,
           fmt::format("must be 1 to {} of the characters A-Z a-z 0-9 _ . - (it is passed in LISTEN_FDNAMES), got {}",
                       max_name, quoted(*name)));
    e.name_ok = false;
  } else {
    e.listen.name = *name;
  }
}

void read_address(const Section& s, Entry& e) {
  e.address_field = s.field("address");
  if (e.address_field.node == nullptr) {
    s.report_missing("address", R"("127.0.0.1:8080")");
    e.address_ok = false;
    return;
  }
  const auto* text = e.address_field.node->as_string();
  if (text == nullptr) {
    report(s.diag(), e.address_field,
           fmt::format(R"(expected a string such as "127.0.0.1:8080", got {})", type_name(*e.address_field.node)));
    e.address_ok = false;
    return;
  }
  std::string why;
  auto address = parse_address(text->get(), &why);
  if (!address) {
    report(s.diag(), e.address_field, fmt::format("invalid address {}: {}", quoted(text->get()), why));
    e.address_ok = false;
    return;
  }
  e.listen.address = std::move(*address);
}

void read_mode(const Section& s, Entry& e) {
  const Field f = s.field("mode");
  const auto mode = read_choice(s.diag(), f, listen_modes);
  if (f.node != nullptr && !mode) return;
  // A unix socket path can be bound only once, so every worker must share the socket.
  const bool is_unix = e.address_ok && e.listen.address.family == AddressFamily::unix_path;
  if (is_unix && mode == ListenMode::reuseport) {
    report(s.diag(), f, R"(must be "shared" for a unix socket: a path can be bound only once, got "reuseport")");
    return;
  }
  e.listen.mode = mode.value_or(is_unix ? ListenMode::shared : ListenMode::reuseport);
}

// Only per-slot sockets can be steered: on a shared socket the key would be ignored.
void read_balance(const Section& s, Entry& e) {
  const Field f = s.field("balance");
  const auto balance = read_choice(s.diag(), f, listen_balances);
  if (!balance) return;
  if (e.listen.mode != ListenMode::reuseport) {
    report(s.diag(), f, fmt::format(R"(applies only to mode = "reuseport" (one socket per slot), got "{}" with mode = "{}")",
                                    to_string(*balance), to_string(e.listen.mode)));
    return;
  }
  e.listen.balance = *balance;
}

// TCP options: a unix socket has no SYN to defer and no Fast Open.
bool tcp_only(const Section& s, const Field& f, const Entry& e) {
  if (!e.address_ok || e.listen.address.family != AddressFamily::unix_path) return true;
  report(s.diag(), f, fmt::format("applies only to TCP listeners, got the unix socket {}", quoted(e.listen.address.text)));
  return false;
}

// TCP_DEFER_ACCEPT: a connection is handed to accept() only once data arrived (or after
// this long). The kernel works in seconds, so it is rounded up.
void read_defer_accept(const Section& s, Entry& e) {
  const Field f = s.field("defer_accept");
  const auto value = read_duration(s.diag(), f);
  if (!value) return;
  if (*value > max_defer_accept) {
    report(s.diag(), f, fmt::format("must be from 0s to {}, got {}", exact_duration(max_defer_accept),
                                    exact_duration(*value)));
    return;
  }
  if (tcp_only(s, f, e)) e.listen.defer_accept = *value;
}

// TCP_FASTOPEN: the length of the queue of Fast Open requests not yet accepted; 0 = off.
void read_fastopen(const Section& s, Entry& e) {
  const Field f = s.field("fastopen");
  const auto value = read_integer(s.diag(), f, 0, max_fastopen);
  if (!value) return;
  if (tcp_only(s, f, e)) e.listen.fastopen = static_cast<int>(*value);
}

std::optional<bool> read_bool(const Section& s, const Field& f) {
  if (f.node == nullptr) return std::nullopt;
  if (const auto* b = f.node->as_boolean()) return b->get();
  report(s.diag(), f, fmt::format("expected true or false, got {}", value_text(*f.node)));
  return std::nullopt;
}

void read_tcp_flag(const Section& s, const Entry& e, std::string_view key, bool& out) {
  const Field f = s.field(key);
  const auto value = read_bool(s, f);
  if (value && tcp_only(s, f, e)) out = *value;
}

// TCP_KEEPIDLE / TCP_KEEPINTVL: the kernel counts whole seconds.
void read_keep_alive_duration(const Section& s, const Entry& e, std::string_view key, Duration& out) {
  const Field f = s.field(key);
  const auto value = read_duration(s.diag(), f);
  if (!value) return;
  if (*value < min_keep_alive || *value > max_keep_alive || value->count() % 1000 != 0) {
    report(s.diag(), f, fmt::format("must be whole seconds from {} to {}, got {}", exact_duration(min_keep_alive),
                                    exact_duration(max_keep_alive), exact_duration(*value)));
    return;
  }
  if (tcp_only(s, f, e)) out = *value;
}

// SO_RCVBUF / SO_SNDBUF: a size with a unit, as "256KiB".
void read_buffer(const Section& s, const Entry& e, std::string_view key, int& out) {
  const Field f = s.field(key);
  if (f.node == nullptr) return;
  const auto* text = f.node->as_string();
  if (text == nullptr) {
    const bool number = f.node->is_integer() || f.node->is_floating_point();
    report(s.diag(), f,
           fmt::format(R"(expected a size {}such as "256KiB", got {})", number ? "with a unit " : "",
                       number ? value_text(*f.node) : type_name(*f.node)));
    return;
  }
  const auto size = read_size_text(s.diag(), f, text->get(), min_buffer, max_buffer,
                                   fmt::format("must be from 4KiB to 512MiB, got {}", quoted(text->get())));
  if (size && tcp_only(s, f, e)) out = static_cast<int>(*size);
}

void read_keep_alive(const Section& s, Entry& e) {
  read_tcp_flag(s, e, "keep_alive", e.listen.keep_alive);
  read_keep_alive_duration(s, e, "keep_alive_time", e.listen.keep_alive_time);
  read_keep_alive_duration(s, e, "keep_alive_interval", e.listen.keep_alive_interval);
  const Field f = s.field("keep_alive_probes");
  const auto probes = read_integer(s.diag(), f, 1, max_keep_alive_probes);
  if (probes && tcp_only(s, f, e)) e.listen.keep_alive_probes = static_cast<int>(*probes);
}

// IPV6_V6ONLY means something only on an IPv6 socket.
void read_bind_ipv6_only(const Section& s, Entry& e) {
  const Field f = s.field("bind_ipv6_only");
  const auto value = read_choice(s.diag(), f, ipv6_only_choices);
  if (!value || !e.address_ok) return;
  if (e.listen.address.family != AddressFamily::ipv6) {
    report(s.diag(), f,
           fmt::format("applies only to IPv6 listeners such as \"[::]:80\", got {}", quoted(e.listen.address.text)));
    return;
  }
  e.listen.bind_ipv6_only = *value;
}

// SO_BINDTODEVICE: the kernel's rule for an interface name (dev_valid_name).
void read_bind_to_device(const Section& s, Entry& e) {
  const Field f = s.field("bind_to_device");
  const auto name = read_string(s.diag(), f);
  if (!name) return;
  const bool valid = !name->empty() && name->size() <= max_device_name && *name != "." && *name != ".." &&
                     std::none_of(name->begin(), name->end(), [](char c) {
                       return c == '/' || c == ':' || c == ' ' || (c >= '\t' && c <= '\r') || c == '\0';
                     });
  if (!valid) {
    report(s.diag(), f,
           fmt::format("must be an interface name of 1 to {} characters without '/', ':' or spaces, got {}",
                       max_device_name, quoted(*name)));
    return;
  }
  if (tcp_only(s, f, e)) e.listen.bind_to_device = *name;
}

std::optional<Entry> read_entry(Diagnostics& diag, const toml::node& node, std::size_t index) {
  Entry e;
  e.prefix = fmt::format("listen[{}]", index);
  const auto* table = node.as_table();
  if (table == nullptr) {
    diag.add(place_of(node), e.prefix, fmt::format("expected a table, got {}", type_name(node)));
    return std::nullopt;
  }
  const Section s(*table, e.prefix, diag);
  s.reject_unknown(listen_keys);
  read_name(s, index, e);
  read_address(s, e);
  read_mode(s, e);
  read_balance(s, e);
  if (auto backlog = read_integer(diag, s.field("backlog"), 1, max_backlog))
    e.listen.backlog = static_cast<int>(*backlog);
  read_defer_accept(s, e);
  read_fastopen(s, e);
  read_keep_alive(s, e);
  read_buffer(s, e, "receive_buffer", e.listen.receive_buffer);
  read_buffer(s, e, "send_buffer", e.listen.send_buffer);
  read_tcp_flag(s, e, "no_delay", e.listen.no_delay);
  read_tcp_flag(s, e, "free_bind", e.listen.free_bind);
  read_bind_ipv6_only(s, e);
  read_bind_to_device(s, e);
  if (auto after = read_duration(diag, s.field("fail_fast_after"))) e.listen.fail_fast_after = *after;
  // systemd's NonBlocking=: O_NONBLOCK on the socket the workers get, TCP or unix alike.
  if (auto non_blocking = read_bool(s, s.field("non_blocking"))) e.listen.non_blocking = *non_blocking;
  return e;
}

// Names and sockets must be unique across listeners; the later one is reported, naming the
// first that has it. One lookup per entry: 2,000 copies of one address are 1,999 errors.
void check_unique(Diagnostics& diag, const std::vector<Entry>& entries) {
  std::map<std::string_view, const Entry*> names;
  std::map<decltype(socket_key(Address{})), const Entry*> sockets;
  for (const Entry& b : entries) {
    if (b.name_ok) {
      if (const auto [it, fresh] = names.try_emplace(b.listen.name, &b); !fresh) {
        report(diag, b.name_field,
               fmt::format("duplicate name {}; {} has it too", quoted(b.listen.name), it->second->prefix));
      }
    }
    if (b.address_ok) {
      if (const auto [it, fresh] = sockets.try_emplace(socket_key(b.listen.address), &b); !fresh) {
        report(diag, b.address_field,
               fmt::format("{} is already used by {}", quoted(b.listen.address.text), it->second->prefix));
      }
    }
  }
}

}  // namespace

void read_listeners(Diagnostics& diag, const Field& field, std::vector<ListenConfig>& out) {
  if (field.node == nullptr) return;
  const auto* array = field.node->as_array();
  if (array == nullptr) {
    report(diag, field, fmt::format("expected an array of tables ([[listen]]), got {}", type_name(*field.node)));
    return;
  }
  if (array->size() > limits::listen_entries) {
    report(diag, field,
           fmt::format("has {} entries; at most {} [[listen]] entries are allowed", array->size(),
                       limits::listen_entries));
    return;
  }
  std::vector<Entry> entries;
  for (std::size_t i = 0; i < array->size(); ++i) {
    if (auto e = read_entry(diag, *array->get(i), i)) entries.push_back(std::move(*e));
  }
  check_unique(diag, entries);
  out.clear();
  for (Entry& e : entries) out.push_back(std::move(e.listen));
}

}  // namespace preforkd::config_detail

namespace preforkd {

int defer_accept_seconds(const ListenConfig& l) {
  const auto ms = l.defer_accept.count();
  return ms <= 0 ? 0 : static_cast<int>((ms + 999) / 1000);
}

bool same_socket_options(const ListenConfig& a, const ListenConfig& b) {
  return a.defer_accept == b.defer_accept && a.fastopen == b.fastopen &&
         a.keep_alive == b.keep_alive && a.keep_alive_time == b.keep_alive_time &&
         a.keep_alive_interval == b.keep_alive_interval && a.keep_alive_probes == b.keep_alive_probes &&
         a.receive_buffer == b.receive_buffer && a.send_buffer == b.send_buffer && a.no_delay == b.no_delay &&
         a.free_bind == b.free_bind && a.bind_ipv6_only == b.bind_ipv6_only && a.bind_to_device == b.bind_to_device &&
         a.non_blocking == b.non_blocking;
}

const char* to_string(BindIpv6Only v) {
  switch (v) {
    case BindIpv6Only::ipv6_only:
      return "ipv6-only";
    case BindIpv6Only::both:
      return "both";
    case BindIpv6Only::system_default:
      return "default";
  }
  return "?";
}

const char* to_string(ListenBalance v) {
  switch (v) {
    case ListenBalance::load:
      return "load";
    case ListenBalance::hash:
      return "hash";
  }
  return "?";
}

}  // namespace preforkd
