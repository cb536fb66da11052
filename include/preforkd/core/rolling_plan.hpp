#pragma once
// A rolling update (reload, restart) as a pure state machine, beside the worker
// lifecycle: roll_step(plan, event) -> (next plan, actions). No runs, no clock and no
// loop in here: the supervisor turns what happens to candidates and replaced runs into
// events, and carries out the actions.
//
// Slot by slot, a candidate starts on the slot's own sockets beside the current run;
// once it is ready the slot switches to it and the old run stops. At most max_surge
// processes beyond the worker count exist at any time (candidates starting, replaced or
// dropped runs still stopping). A candidate that fails before it is ready aborts the
// update: the other candidates are dropped, and the slots already switched roll back to
// the previous generation, the same way. A failure while rolling back ends it.

#include <deque>
#include <string>
#include <vector>

namespace preforkd {

// Which generation a candidate is started from.
enum class RollTarget { next, previous };

struct RollingPlan {
  std::deque<int> pending;       // slots still to replace, in order
  std::vector<int> in_flight;    // slots whose candidate is starting
  std::vector<int> switched;     // slots that run a candidate now
  std::vector<int> stopping;     // slots with a replaced or dropped run still stopping (one entry per run)
  int max_surge = 1;
  bool rolling_back = false;
  bool finished = false;
  std::string failure;           // why it rolls back
  bool operator==(const RollingPlan&) const = default;

  [[nodiscard]] static RollingPlan of(std::vector<int> slots, int max_surge);
};

struct RollEvent {
  enum class Kind {
    begin,             // start the first candidates
    candidate_ready,   // the slot's candidate is ready
    candidate_failed,  // it failed before it was ready (`reason`)
    run_gone,          // a replaced or dropped run of the slot has no process any more
    abort,             // give up now (`reason`): preforkd is stopping
  };
  Kind kind = Kind::begin;
  int slot = -1;
  std::string reason;
};

struct RollAction {
  enum class Kind {
    start_candidate,   // a new run on `slot`, from `target`
    switch_slot,       // the candidate becomes the slot's run; the old run stops (or goes, if it has no process)
    drop_candidate,    // the candidate stops (or goes); it never takes the slot
    report_failure,    // the update failed (`message`): rolling back
    report_rollback_failure,  // the rollback failed too (`message`)
    finish,            // done: `ok`, with `message` (a summary, or why it failed)
  };
  Kind kind = Kind::finish;
  int slot = -1;
  RollTarget target = RollTarget::next;
  bool ok = false;
  std::string message;
  bool operator==(const RollAction&) const = default;
};

struct RollTransition {
  RollingPlan next;
  std::vector<RollAction> actions;
};

[[nodiscard]] RollTransition roll_step(const RollingPlan& plan, const RollEvent& event);

}  // namespace preforkd
