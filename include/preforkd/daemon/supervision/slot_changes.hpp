#pragma once
// Which kinds of change an observer of the slots is told about (Supervisor::subscribe).
// After a drain of its queue the supervisor reduces what it shows (slot_view.hpp) to a
// digest of what each kind depends on and tells each observer the kinds whose part of the
// digest differs from the last one told: an event that changes nothing an observer reads
// (a STATUS= line, a timer that moves no state) wakes nobody.

#include <preforkd/daemon/supervision/slot_view.hpp>

#include <cstdint>
#include <vector>

namespace preforkd::daemon {

enum class Change : unsigned {
  // A run's process or state (started, ready, stopping, gone, replaced), a slot added,
  // being removed or parked, the worker count, the generation, the master stopping:
  // steering, readiness, fail-fast, the pool and systemd's STATUS=/READY=1 follow these.
  workers = 1U << 0,
  // The listening sockets: a reload's new ones, a slot's added or closed: the fd store,
  // fail-fast's polls and the pool's watches follow these.
  sockets = 1U << 1,
};

// A set of Change kinds.
class Changes {
 public:
  constexpr Changes() = default;
  constexpr Changes(Change c) : bits_(static_cast<unsigned>(c)) {}  // NOLINT(google-explicit-constructor)
  [[nodiscard]] constexpr Changes operator|(Changes other) const { return Changes(bits_ | other.bits_); }
  // Whether any kind of `other` is in this set.
  [[nodiscard]] constexpr bool any_of(Changes other) const { return (bits_ & other.bits_) != 0; }
  [[nodiscard]] constexpr bool empty() const { return bits_ == 0; }
  friend constexpr bool operator==(Changes, Changes) = default;

 private:
  constexpr explicit Changes(unsigned bits) : bits_(bits) {}
  unsigned bits_ = 0;
};

[[nodiscard]] constexpr Changes operator|(Change a, Change b) { return Changes(a) | Changes(b); }

// What the supervisor shows beside its slots that the kinds depend on.
struct SupervisorFacts {
  int target_count = 0;
  int generation = 0;
  bool stopping = false;
  const void* listener_set = nullptr;      // which set of sockets is the current one
  std::vector<std::vector<int>> slot_fds;  // its fds for each slot
};

// What the change kinds depend on, reduced to numbers compared as a whole.
struct SlotsDigest {
  std::vector<std::int64_t> workers;
  std::vector<std::int64_t> sockets;
};

[[nodiscard]] SlotsDigest digest(const std::vector<SlotView>& slots, const SupervisorFacts& facts);
// The kinds whose part differs between `before` and `after`.
[[nodiscard]] Changes changes_between(const SlotsDigest& before, const SlotsDigest& after);

}  // namespace preforkd::daemon
