#include <preforkd/core/pool_plan.hpp>

#include <preforkd/core/message_text.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace preforkd {

namespace {

bool has_worker(const PoolSlot& s) { return s.state == PoolSlotState::starting || s.state == PoolSlotState::running; }

// The first `n` empty slots not yet in `start`, lowest first.
void add_free(const std::vector<PoolSlot>& slots, int n, std::vector<int>& start) {
  for (const PoolSlot& s : slots) {
    if (n <= 0) break;
    if (s.state != PoolSlotState::empty || std::find(start.begin(), start.end(), s.slot) != start.end()) continue;
    start.push_back(s.slot);
    --n;
  }
}

}  // namespace

PoolDecision plan_pool(const std::vector<PoolSlot>& slots, const PoolInputs& in) {
  PoolDecision d;
  int live = 0, waiting = 0, starting = 0, draining = 0, free = 0, queued = in.queued_shared, arrived = 0;
  for (const PoolSlot& s : slots) {
    if (has_worker(s)) ++live;
    if (s.state == PoolSlotState::starting) ++starting;
    if (s.state == PoolSlotState::draining) ++draining;
    if (s.state == PoolSlotState::empty) ++free;
    if (s.state == PoolSlotState::running && s.activity == Activity::waiting) ++waiting;
    if (has_worker(s)) queued += s.queued;
    if (s.state == PoolSlotState::empty && s.queued > 0) {
      arrived += s.queued;
      d.start.push_back(s.slot);
    }
  }
  d.from = live;
  d.step = in.step;
  std::vector<std::string> why;
  if (arrived > 0) why.push_back(fmt::format("{} on {} without a worker", plural(arrived, "connection"),
                                             plural(static_cast<std::int64_t>(d.start.size()), "slot")));

  const bool shortage = (queued > 0 && waiting == 0) || (in.mode == PoolMode::dynamic && waiting < in.spare);
  if (in.mode == PoolMode::fixed) {
    if (free > 0) why.emplace_back("pool = \"static\": every slot runs a worker");
    add_free(slots, free, d.start);
    d.step = 0;
  } else if (live + static_cast<int>(d.start.size()) < in.min_count) {
    why.push_back(fmt::format("fewer than min_count ({})", in.min_count));
    add_free(slots, in.min_count - live - static_cast<int>(d.start.size()), d.start);
  } else if (!shortage) {
    d.step = 0;
  } else if (starting == 0 && d.start.empty()) {
    // The last growth is serving, and the shortage lasts: twice as many this time.
    d.step = in.step == 0 ? 1 : in.step * 2;
    const int wanted = std::max(d.step, in.mode == PoolMode::dynamic ? in.spare - waiting : 0);
    add_free(slots, wanted, d.start);
    if (d.start.empty()) d.step = in.step;  // at count already: nothing to double
    if (!d.start.empty()) {
      if (queued > 0 && waiting == 0)
        why.push_back(fmt::format("{} queued, none waiting", plural(queued, "connection")));
      else
        why.push_back(fmt::format("{} waiting, spare is {}", waiting, in.spare));
    }
  }
  if (!d.start.empty()) {
    std::sort(d.start.begin(), d.start.end());
    d.kind = PoolDecision::Kind::grow;
    d.to = live + static_cast<int>(d.start.size());
    for (const std::string& w : why) d.reason += (d.reason.empty() ? "" : "; ") + w;
    return d;
  }
  d.to = live;
  if (in.mode == PoolMode::fixed || shortage || starting > 0 || draining > 0 || live <= in.min_count) return d;
  if (in.mode == PoolMode::dynamic && waiting - 1 < in.spare) return d;
  const PoolSlot* longest = nullptr;
  for (const PoolSlot& s : slots) {
    if (s.state != PoolSlotState::running || s.activity != Activity::waiting || s.queued > 0 || !s.idle_since) continue;
    if (in.now - *s.idle_since < in.idle_timeout) continue;
    // The longest idle; among equals the highest slot, so the pool keeps its low end.
    if (longest == nullptr || *s.idle_since <= *longest->idle_since) longest = &s;
  }
  if (longest == nullptr) return d;
  d.kind = PoolDecision::Kind::retire;
  d.retire = longest->slot;
  d.to = live - 1;
  d.reason = fmt::format("worker {} waited {} for a connection (idle_timeout {})", longest->slot,
                         format_duration(in.now - *longest->idle_since), exact_duration(in.idle_timeout));
  return d;
}

std::string pool_log_line(const PoolDecision& d) {
  return fmt::format("pool: {} -> {}: {}", d.from, plural(d.to, "worker"), d.reason);
}

}  // namespace preforkd
