// The eBPF balancer's rule (src/bpf/steer_rank.h), table-tested: what the kernel program
// sees of each live slot in, the slot it sends the new connection to out. The program
// takes the slot of lowest rank, visiting the live slots from the hash's pick onwards
// (distance 0, 1, ...); pick() below does the same over a table row.

#include "../../src/bpf/steer_rank.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

struct Seen {
  unsigned queued;
  bool waiting;
  unsigned long long busy_for_us;  // since the slot was last picked
};

// The index of the slot the program picks, `start` being the hash's pick; `pack` (an
// adaptive pool): the distance is the slot's place in the live set, as the program passes it.
std::size_t pick(const std::vector<Seen>& slots, std::size_t start, bool pack = false) {
  std::size_t best = 0;
  unsigned long long best_rank = ~0ULL;
  for (std::size_t k = 0; k < slots.size(); ++k) {
    const std::size_t i = (start + k) % slots.size();
    const Seen& s = slots[i];
    const unsigned long long rank =
        preforkd_steer_rank(s.queued, s.waiting ? 1 : 0, static_cast<unsigned>(pack ? i : k), s.busy_for_us);
    if (rank < best_rank) {
      best_rank = rank;
      best = i;
    }
  }
  return best;
}

constexpr unsigned long long never = PREFORKD_STEER_TIE_MAX;

struct Case {
  std::string name;
  std::vector<Seen> slots;
  std::size_t start;
  std::size_t expected;
};

}  // namespace

TEST_CASE("the eBPF balancer's rank picks the slot a new connection goes to") {
  const std::vector<Case> cases{
      {"the one waiting worker, however the hash falls",
       {{0, false, 10}, {0, false, 20}, {0, true, never}, {0, false, 30}}, 0, 2},
      {"every worker waiting: the hash's pick (spreads like the kernel)",
       {{0, true, never}, {0, true, never}, {0, true, never}}, 1, 1},
      {"every worker waiting: the next one after the hash's pick when it has a queue",
       {{0, true, never}, {1, true, never}, {0, true, never}}, 1, 2},
      {"every worker busy: the one picked most recently (busy for the shortest time)",
       {{0, false, 3'000'000}, {0, false, 400}, {0, false, 90'000}}, 0, 1},
      {"a shorter queue first: busy with none before waiting with one in the handshake",
       {{1, true, never}, {0, false, 800}}, 0, 1},
      {"a shorter queue first: busy with none, picked long ago, before busy with one",
       {{1, false, 100}, {0, false, 5'000'000}}, 0, 1},
      {"at equal queues a waiting worker before a busy one picked a moment ago",
       {{0, false, 1}, {0, true, never}}, 0, 1},
      {"a stopped worker (not waiting, its queue growing) is passed over",
       {{2, false, 10'000'000}, {0, false, 50}}, 0, 1},
      {"every queue long: the shortest", {{5, true, never}, {3, true, never}, {4, true, never}}, 0, 1},
      {"one live slot", {{7, false, 5}}, 0, 0},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(pick(c.slots, c.start) == c.expected);
  }
}

TEST_CASE("packing - the eBPF balancer's rank picks the lowest waiting slot whatever the hash") {
  const std::vector<Case> cases{
      {"every worker waiting: the lowest, not the hash's pick",
       {{0, true, never}, {0, true, never}, {0, true, never}}, 2, 0},
      {"the lowest busy: the next waiting one", {{0, false, 300}, {0, true, never}, {0, true, never}}, 2, 1},
      {"a queue still comes first", {{1, true, never}, {0, true, never}, {0, true, never}}, 0, 1},
      {"every worker busy: as without packing", {{0, false, 3'000'000}, {0, false, 400}, {0, false, 90'000}}, 2, 1},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(pick(c.slots, c.start, true) == c.expected);
  }
}

TEST_CASE("the rank's tie-break is capped - so a queue always outweighs it") {
  // A huge time since the last pick (never picked) must not reach the waiting bit.
  CHECK(preforkd_steer_rank(0, 0, 0, ~0ULL) < preforkd_steer_rank(1, 1, 0, 0));
  CHECK(preforkd_steer_rank(0, 1, 1023, 0) < preforkd_steer_rank(0, 0, 0, 0));
  CHECK(preforkd_steer_rank(0, 0, 0, ~0ULL) == preforkd_steer_rank(0, 0, 0, PREFORKD_STEER_TIE_MAX));
}
