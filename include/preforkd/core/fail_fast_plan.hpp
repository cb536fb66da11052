#pragma once
// Fail fast when nobody can answer ([[listen]] fail_fast_after), as a pure function: from
// whether any slot has a ready worker, and since when none has, to whether the master
// refuses the listener's new connections (accepts them and resets them at once) and when
// to look again. No sockets and no clock in here: daemon/balance/fail_fast.cpp polls and resets.

#include <preforkd/core/units.hpp>

#include <cstdint>
#include <optional>
#include <vector>

namespace preforkd {

// What the master remembers of one listener.
struct FailFastState {
  std::optional<Duration> none_ready_since;  // monotonic; unset while a worker is ready
  bool refusing = false;
  Duration refusing_since{};
  std::uint64_t refused = 0;  // connections reset since refusing started
  bool operator==(const FailFastState&) const = default;
};

enum class FailFastChange {
  none,
  started,  // log "no worker ready for <after>, refusing connections until one is"
  ended,    // log how many were refused, and for how long
};

struct FailFastStep {
  FailFastState next;
  FailFastChange change = FailFastChange::none;
  // When to look again if nothing else happens (the moment the threshold passes); unset
  // when only a change of the workers can change the answer.
  std::optional<Duration> check_at;
  // With ended: what the episode refused, and how long it lasted.
  std::uint64_t refused = 0;
  Duration refused_for{};
  bool operator==(const FailFastStep&) const = default;
};

// `any_ready`: some slot of the listener has a ready worker now. `now`: monotonic time.
// `after`: fail_fast_after; zero never refuses (and ends a refusal a reload turned off).
[[nodiscard]] FailFastStep fail_fast_step(const FailFastState& state, bool any_ready, Duration now, Duration after);

// Which sockets of a refusing listener the master drains: those that no worker process
// holds (a starting worker may still take what is queued on its socket, and two
// processes accepting from one queue would race). `holders[i]` are the slots socket i
// belongs to (one for a reuseport socket, every slot for a shared one); `has_process[s]`
// says whether slot s has a worker process (starting, ready or stopping).
[[nodiscard]] std::vector<bool> sockets_to_refuse_on(bool refusing, const std::vector<std::vector<int>>& holders,
                                                     const std::vector<bool>& has_process);

}  // namespace preforkd
