#pragma once
// systemd's fd store (FileDescriptorStoreMax=): the names under which the master stores
// its listening sockets, which of the sockets systemd passes back at start it takes, and
// what to store and remove when the set of sockets changes. Pure: no fds, no syscalls.
//
// A name is "preforkd.<listener>.<slot>" for a reuseport listener's per-slot socket and
// "preforkd.<listener>.shared" for the one socket of a shared (or unix:) listener.
// systemd refuses ':' in an fd name (it separates LISTEN_FDNAMES), so '.' separates the
// parts; a listener name may contain '.', so the last '.' is the one before the slot.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::fd_store {

inline constexpr std::string_view name_prefix = "preforkd.";
inline constexpr std::string_view shared_suffix = "shared";
// systemd's FDNAME_MAX.
inline constexpr std::size_t max_name_length = 255;
// The first fd passed in LISTEN_FDS (systemd's SD_LISTEN_FDS_START).
inline constexpr int listen_fds_start = 3;

// Where a stored socket belongs: a listener and a slot (nullopt: the shared socket).
struct SocketPlace {
  std::string listener;
  std::optional<int> slot;
  bool operator==(const SocketPlace&) const = default;
};

// The store name of a socket; nullopt when it would be longer than systemd accepts.
[[nodiscard]] std::optional<std::string> name_of(const SocketPlace& place);
// The place a name of our scheme stands for; nullopt for any other name (a .socket
// unit's FileDescriptorName=, "unknown", a malformed one).
[[nodiscard]] std::optional<SocketPlace> parse_name(std::string_view name);

// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES as the master found them (nullopt: unset).
struct ListenEnv {
  std::optional<std::string> pid;
  std::optional<std::string> fds;
  std::optional<std::string> names;
};

// What the variables pass to the process `self`, whose open fds from 3 on are `open`
// (ascending). They apply, as sd_listen_fds_with_names() would read them, when LISTEN_PID
// is `self`, LISTEN_FDS a count whose fds are all open and LISTEN_FDNAMES (when set) names
// each of them: then `count` and `names` ("unknown" for each without LISTEN_FDNAMES).
// Otherwise `ignored` says why, and `stray` are the fds of 3 .. 3+LISTEN_FDS-1 that are
// open: passed to nobody else (they are this process's), used by nothing, so to close.
struct PassedFds {
  int count = 0;
  std::vector<std::string> names;
  std::optional<std::string> ignored;
  std::vector<int> stray;
};
[[nodiscard]] PassedFds passed_fds(const ListenEnv& env, long self, const std::vector<int>& open);

// A [[listen]] entry as matching needs it.
struct ListenerShape {
  std::string name;
  bool per_slot = false;  // reuseport on an IP address: one socket per slot
};

// Why an inherited socket is not what the config asks for ("bound to 127.0.0.1:8081,
// the config says 127.0.0.1:8080"), or nullopt when it is. Called for sockets whose
// name already matches a listener and slot.
using SocketCheck = std::function<std::optional<std::string>(std::size_t inherited, std::size_t listener)>;

struct Dropped {
  std::size_t inherited = 0;  // index into the names
  std::string why;
};

struct Matching {
  // Per listener (config order): the inherited indices taken, in slot order (slots
  // 0..k-1 of a per-slot listener, k <= slots; at most one for a shared listener).
  std::vector<std::vector<std::size_t>> taken;
  // Ours by name but not taken: closed, and removed from the store.
  std::vector<Dropped> dropped;
  // Not of our scheme (a .socket unit's sockets): closed and left alone, with a warning.
  std::vector<std::size_t> foreign;
};

// Decides which inherited sockets become which listener's sockets. A per-slot listener
// takes its stored sockets only as a gap-free run from slot 0: the kernel numbers a
// SO_REUSEPORT group in join order and a socket closed in the middle moves the last one
// into its place, so after a gap the order of the rest is unknown. Then the whole group
// is dropped and bound anew. Sockets for slots the config no longer has are dropped
// (they are the group's last members, so the others keep their places).
[[nodiscard]] Matching match_inherited(const std::vector<std::string>& names,
                                       const std::vector<ListenerShape>& listeners, int slots,
                                       const SocketCheck& check);

// What to tell systemd so the store holds exactly `wanted` (name -> socket identity,
// e.g. the inode) when it now holds `stored`: names to remove first (those gone and
// those whose socket changed), then names to add. Removals come highest slot first, as
// the master closes a group's sockets.
struct SyncPlan {
  std::vector<std::string> remove;
  std::vector<std::string> add;
  bool operator==(const SyncPlan&) const = default;
};
[[nodiscard]] SyncPlan plan_sync(const std::map<std::string, std::uint64_t>& stored,
                                 const std::map<std::string, std::uint64_t>& wanted);

}  // namespace preforkd::fd_store
