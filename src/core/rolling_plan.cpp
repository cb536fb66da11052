#include <preforkd/core/rolling_plan.hpp>

#include <algorithm>

namespace preforkd {

namespace {

using A = RollAction::Kind;
using E = RollEvent::Kind;

bool erase_one(std::vector<int>& v, int slot) {
  auto it = std::find(v.begin(), v.end(), slot);
  if (it == v.end()) return false;
  v.erase(it);
  return true;
}

bool contains(const std::vector<int>& v, int slot) { return std::find(v.begin(), v.end(), slot) != v.end(); }

RollAction slot_action(A kind, int slot) {
  RollAction a;
  a.kind = kind;
  a.slot = slot;
  return a;
}

RollAction message_action(A kind, bool ok, std::string message) {
  RollAction a;
  a.kind = kind;
  a.ok = ok;
  a.message = std::move(message);
  return a;
}

// Starts candidates while there is room, then finishes once nothing is left to do:
// no candidate starting, and no switched slot still waiting for its old run to stop.
void advance(RollingPlan& p, std::vector<RollAction>& out) {
  while (!p.pending.empty() && static_cast<int>(p.in_flight.size() + p.stopping.size()) < p.max_surge) {
    const int s = p.pending.front();
    p.pending.pop_front();
    p.in_flight.push_back(s);
    RollAction a = slot_action(A::start_candidate, s);
    a.target = p.rolling_back ? RollTarget::previous : RollTarget::next;
    out.push_back(a);
  }
  if (!p.pending.empty() || !p.in_flight.empty()) return;
  for (int s : p.switched)
    if (contains(p.stopping, s)) return;
  p.finished = true;
  if (!p.failure.empty()) {
    out.push_back(message_action(A::finish, false, p.failure));
  } else {
    out.push_back(message_action(A::finish, true, std::to_string(p.switched.size()) + " workers replaced"));
  }
}

void on_failed(RollingPlan& p, const RollEvent& e, std::vector<RollAction>& out) {
  if (!erase_one(p.in_flight, e.slot)) return;
  out.push_back(slot_action(A::drop_candidate, e.slot));
  p.stopping.push_back(e.slot);
  if (p.rolling_back) {
    out.push_back(message_action(A::report_rollback_failure, false, e.reason));
    p.pending.clear();
    return;
  }
  p.failure = e.reason;
  out.push_back(message_action(A::report_failure, false, e.reason));
  // Every other candidate goes too, and the switched slots go back, one by one.
  for (int other : p.in_flight) {
    out.push_back(slot_action(A::drop_candidate, other));
    p.stopping.push_back(other);
  }
  p.in_flight.clear();
  p.pending.assign(p.switched.begin(), p.switched.end());
  p.switched.clear();
  p.rolling_back = true;
}

}  // namespace

RollingPlan RollingPlan::of(std::vector<int> slots, int max_surge) {
  RollingPlan p;
  p.pending.assign(slots.begin(), slots.end());
  p.max_surge = std::max(1, max_surge);
  return p;
}

RollTransition roll_step(const RollingPlan& plan, const RollEvent& e) {
  RollTransition t{plan, {}};
  RollingPlan& p = t.next;
  if (p.finished) return t;
  switch (e.kind) {
    case E::begin:
      break;
    case E::candidate_ready:
      if (!erase_one(p.in_flight, e.slot)) return t;
      t.actions.push_back(slot_action(A::switch_slot, e.slot));
      p.switched.push_back(e.slot);
      p.stopping.push_back(e.slot);
      break;
    case E::candidate_failed:
      on_failed(p, e, t.actions);
      break;
    case E::run_gone:
      if (!erase_one(p.stopping, e.slot)) return t;
      break;
    case E::abort:
      p.finished = true;
      t.actions.push_back(message_action(A::finish, false, e.reason));
      return t;
  }
  advance(p, t.actions);
  return t;
}

}  // namespace preforkd
