// Finding who listens on a TCP address: /proc/net/tcp{,6} for the socket inodes,
// /proc/<pid>/fd for the processes that hold them, and a probe bind for the kernel's say.

#include <preforkd/os/port_holder.hpp>

#include <preforkd/os/fd.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <string>

#include <dirent.h>
#include <netinet/in.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

constexpr std::string_view socket_link_prefix = "socket:[";

bool all_digits(const char* name) {
  if (*name == '\0') return false;
  for (; *name != '\0'; ++name)
    if (*name < '0' || *name > '9') return false;
  return true;
}

// The socket inode an fd link names ("socket:[12345]"), or 0.
std::uint64_t socket_inode(const std::string& link_path) {
  char target[64];
  const ssize_t n = ::readlink(link_path.c_str(), target, sizeof target - 1);
  if (n <= 0) return 0;
  const std::string_view text(target, static_cast<std::size_t>(n));
  if (!text.starts_with(socket_link_prefix) || text.back() != ']') return 0;
  std::uint64_t inode = 0;
  const auto digits = text.substr(socket_link_prefix.size(), text.size() - socket_link_prefix.size() - 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), inode);
  return ec == std::errc{} && end == digits.data() + digits.size() ? inode : 0;
}

bool holds_one_of(const std::string& pid_dir, const std::vector<std::uint64_t>& inodes) {
  const std::string fd_dir = pid_dir + "/fd";
  DIR* dir = ::opendir(fd_dir.c_str());
  if (dir == nullptr) return false;  // gone, or another user's
  bool found = false;
  while (const dirent* e = ::readdir(dir)) {
    if (!all_digits(e->d_name)) continue;
    const std::uint64_t inode = socket_inode(fd_dir + "/" + e->d_name);
    if (inode != 0 && std::find(inodes.begin(), inodes.end(), inode) != inodes.end()) {
      found = true;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

std::string program_of(const std::string& pid_dir) {
  std::ifstream in(pid_dir + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace

std::optional<TcpEndpoint> endpoint_of(const sockaddr* sa) {
  TcpEndpoint e;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    e.table = TcpTable::v4;
    std::memcpy(e.bytes.data(), &in->sin_addr, 4);
    e.port = ntohs(in->sin_port);
    return e;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    e.table = TcpTable::v6;
    std::memcpy(e.bytes.data(), &in6->sin6_addr, 16);
    e.port = ntohs(in6->sin6_port);
    return e;
  }
  return std::nullopt;
}

AddressUse address_use_now(const TcpEndpoint& wanted) {
  std::vector<TcpSocketLine> table;
  const std::pair<const char*, TcpTable> tables[] = {{"/proc/net/tcp", TcpTable::v4}, {"/proc/net/tcp6", TcpTable::v6}};
  for (const auto& [path, kind] : tables) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      if (auto entry = parse_tcp_line(line, kind)) table.push_back(*entry);
    }
  }
  return address_use(table, wanted);
}

std::vector<std::uint64_t> listening_inodes(const TcpEndpoint& wanted) {
  return address_use_now(wanted).listening;
}

std::vector<PortHolder> socket_holders(const std::vector<std::uint64_t>& inodes) {
  std::vector<PortHolder> out;
  if (inodes.empty()) return out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (const dirent* e = ::readdir(proc)) {
    if (!all_digits(e->d_name)) continue;
    const std::string pid_dir = std::string("/proc/") + e->d_name;
    if (!holds_one_of(pid_dir, inodes)) continue;
    PortHolder h;
    std::from_chars(e->d_name, e->d_name + std::strlen(e->d_name), h.pid);
    h.program = program_of(pid_dir);
    out.push_back(std::move(h));
  }
  ::closedir(proc);
  std::sort(out.begin(), out.end(), [](const PortHolder& a, const PortHolder& b) { return a.pid < b.pid; });
  return out;
}

std::string describe_holders(const std::vector<PortHolder>& holders, std::size_t limit) {
  std::string text;
  for (std::size_t i = 0; i < holders.size() && i < limit; ++i) {
    if (!text.empty()) text += ", ";
    text += "pid " + std::to_string(holders[i].pid);
    if (!holders[i].program.empty()) text += " (" + holders[i].program + ")";
  }
  if (holders.size() > limit) text += " and " + std::to_string(holders.size() - limit) + " more";
  return text;
}

ProbeResult probe_bind(const sockaddr* sa, socklen_t len, int* err) {
  Fd fd(::socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  if (!fd.valid() || ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    *err = errno;
    return ProbeResult::failed;
  }
  // As the listener itself will be: "[::]:80" is IPv6 only.
  if (sa->sa_family == AF_INET6 && ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    *err = errno;
    return ProbeResult::failed;
  }
  if (::bind(fd.get(), sa, len) == 0) return ProbeResult::free;
  *err = errno;
  return *err == EADDRINUSE ? ProbeResult::in_use : ProbeResult::failed;
}

}  // namespace preforkd::os
