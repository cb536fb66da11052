// Storing the listening sockets in systemd's fd store and taking them back at start.

#include <preforkd/daemon/master/fd_store.hpp>

#include <preforkd/core/fd_store_names.hpp>
#include <preforkd/daemon/log/logging.hpp>
#include <preforkd/os/open_fds.hpp>
#include <preforkd/os/sys_error.hpp>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <charconv>
#include <cstdlib>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace preforkd::daemon {
namespace {

bool per_slot(const ListenConfig& l) {
  return l.mode == ListenMode::reuseport && l.address.family != AddressFamily::unix_path;
}

std::uint64_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

}  // namespace

FdStore::FdStore() {
  enabled_ = std::getenv("NOTIFY_SOCKET") != nullptr;
  // systemd 254 and later tell the store's size; without it (older systemd) there is no
  // way to know, and FDSTORE=1 to a unit without a store only drops the fds.
  if (const char* max = std::getenv("FDSTORE"); max != nullptr) {
    std::size_t n = 0;
    const std::string_view text(max);
    if (std::from_chars(text.data(), text.data() + text.size(), n).ec == std::errc{}) limit_ = n;
    if (limit_ == 0) enabled_ = false;
  }
}

bool FdStore::send(const std::string& message, int fd) {
  const int r = fd >= 0 ? sd_pid_notify_with_fds(0, 0, message.c_str(), &fd, 1) : sd_notify(0, message.c_str());
  if (r < 0) {
    spdlog::warn("fd store: sd_notify '{}' failed: {}, ignoring", message.substr(0, message.find('\n')),
                 os::errno_text(-r));
    return false;
  }
  return true;
}

void FdStore::remove(const std::vector<std::string>& names) {
  if (!enabled_) return;
  for (const std::string& name : names) {
    if (send("FDSTOREREMOVE=1\nFDNAME=" + name, -1)) stored_.erase(name);
  }
}

void FdStore::sync(const os::ListenerSet& listeners) {
  if (!enabled_) return;
  std::map<std::string, std::uint64_t> wanted;
  std::map<std::string, int> fds;
  const auto& configs = listeners.configs();
  const int slots = listeners.slot_count();
  for (int slot = 0; slot < slots; ++slot) {
    const std::vector<int> slot_fds = listeners.fds_for_slot(slot);
    for (std::size_t i = 0; i < configs.size() && i < slot_fds.size(); ++i) {
      const bool own = per_slot(configs[i]);
      if (!own && slot > 0) continue;  // the shared socket, once
      const auto name = fd_store::name_of({configs[i].name, own ? std::optional<int>(slot) : std::nullopt});
      if (!name) {
        if (warned_.insert(configs[i].name).second)
          log_with({.listener = configs[i].name}, spdlog::level::warn,
                   "fd store: the name of listener '{}' is too long for systemd's fd store ({} bytes at most), "
                   "not storing its sockets",
                   configs[i].name, fd_store::max_name_length);
        continue;
      }
      if (wanted.size() >= limit_) {
        if (warned_.insert("").second)
          spdlog::warn("fd store: FileDescriptorStoreMax={} holds fewer than the master's sockets, storing the first {}",
                       limit_, limit_);
        continue;
      }
      wanted[*name] = inode_of(slot_fds[i]);
      fds[*name] = slot_fds[i];
    }
  }
  const fd_store::SyncPlan plan = fd_store::plan_sync(stored_, wanted);
  remove(plan.remove);
  int added = 0;
  for (const std::string& name : plan.add) {
    // FDPOLL=0: a listening socket never hangs up, systemd need not watch it.
    if (send("FDSTORE=1\nFDNAME=" + name + "\nFDPOLL=0", fds[name])) {
      stored_[name] = wanted[name];
      ++added;
    }
  }
  if (added > 0 || !plan.remove.empty())
    spdlog::debug("fd store: stored {} sockets, removed {}", added, plan.remove.size());
}

fd_store::PassedFds read_listen_fds() {
  const auto variable = [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    return value != nullptr ? std::optional<std::string>(value) : std::nullopt;
  };
  const fd_store::ListenEnv env{variable("LISTEN_PID"), variable("LISTEN_FDS"), variable("LISTEN_FDNAMES")};
  for (const char* name : {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) ::unsetenv(name);
  fd_store::PassedFds passed = fd_store::passed_fds(env, ::getpid(), os::open_fds_from(fd_store::listen_fds_start));
  // As sd_listen_fds() does: a fork before they are taken or closed must not leak them.
  for (int i = 0; i < passed.count; ++i) ::fcntl(fd_store::listen_fds_start + i, F_SETFD, FD_CLOEXEC);
  for (int fd : passed.stray) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return passed;
}

Result<InheritedSockets> take_inherited_sockets(const fd_store::PassedFds& passed,
                                                const std::vector<ListenConfig>& listeners, int slots) {
  InheritedSockets out;
  if (passed.ignored) {
    // Closed, not only ignored: a leftover socket on a configured address would make the
    // bind below fail with "address already in use" by the master itself.
    std::string closed;
    for (int fd : passed.stray) {
      closed += (closed.empty() ? "" : ", ") + fmt::format("fd {} ({})", fd, os::describe_fd(fd));
      ::close(fd);
    }
    spdlog::warn("LISTEN_FDS: {}, not taking the fds passed: {}", *passed.ignored,
                 closed.empty() ? std::string("no fd to close") : "closed " + closed);
  }
  if (passed.count == 0) return out;
  const std::vector<std::string>& names = passed.names;

  const auto fd_of = [](std::size_t i) { return fd_store::listen_fds_start + static_cast<int>(i); };
  std::vector<fd_store::ListenerShape> shapes;
  for (const auto& l : listeners) shapes.push_back({l.name, per_slot(l)});
  const fd_store::Matching m = fd_store::match_inherited(names, shapes, slots, [&](std::size_t i, std::size_t l) {
    return os::ListenerSet::inherited_mismatch(fd_of(i), listeners[l]);
  });
  // Closed before anything is bound: a new member must join its group after every
  // socket that leaves it, or it would be moved into a leaver's place.
  for (std::size_t i : m.foreign) {
    spdlog::warn("LISTEN_FDS: fd {} named '{}' is not one of preforkd's stored sockets (preforkd binds its own "
                 "[[listen]] sockets), closing it, ignoring",
                 fd_of(i), names[i]);
    ::close(fd_of(i));
  }
  for (const auto& d : m.dropped) {
    spdlog::warn("fd store: not taking socket '{}' (fd {}): {}; closing it", names[d.inherited], fd_of(d.inherited),
                 d.why);
    ::close(fd_of(d.inherited));
    out.dropped_names.push_back(names[d.inherited]);
  }
  std::vector<std::vector<int>> taken(listeners.size());
  std::size_t count = 0;
  for (std::size_t l = 0; l < listeners.size(); ++l) {
    for (std::size_t i : m.taken[l]) taken[l].push_back(fd_of(i));
    count += taken[l].size();
    if (!taken[l].empty())
      log_with({.listener = listeners[l].name}, spdlog::level::info,
               "fd store: took {} stored socket{} of listener '{}' ({})", taken[l].size(),
               taken[l].size() == 1 ? "" : "s", listeners[l].name, listeners[l].address.text);
  }
  if (count == 0) return out;
  auto set = os::ListenerSet::take_inherited(listeners, slots, taken);
  if (!set) return Error{set.error()};
  out.listeners = std::move(*set);
  return out;
}

}  // namespace preforkd::daemon
