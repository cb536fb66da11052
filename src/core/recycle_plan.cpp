#include <preforkd/core/recycle_plan.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace preforkd {

namespace {

constexpr std::uint64_t mib = std::uint64_t{1} << 20;

// The watch of `view`'s worker as it stands before this look's sample.
RecycleWatch watch_for(const RecycleWatch* previous, const RecycleView& view, const RecycleLimits& limits) {
  RecycleWatch w;
  if (previous != nullptr && previous->pid == view.pid) w = *previous;
  w.pid = view.pid;
  if (view.pid <= 0 || limits.max_lifetime <= Duration::zero()) {
    w.lifetime_ends = Duration::zero();
    w.drawn_for = Duration::zero();
  } else if (w.drawn_for != limits.max_lifetime) {
    // Drawn once per run; again only when a reload changed max_lifetime.
    w.lifetime_ends = view.started + jittered_lifetime(limits.max_lifetime, view.jitter_draw);
    w.drawn_for = limits.max_lifetime;
  }
  if (limits.max_memory == 0 || view.pid <= 0) {
    w.above = 0;
  } else if (view.uss) {
    w.last_uss = *view.uss;
    w.above = *view.uss > limits.max_memory ? w.above + 1 : 0;
  }
  return w;
}

}  // namespace

Duration jittered_lifetime(Duration max_lifetime, double draw) {
  const double d = std::clamp(draw, 0.0, 1.0);
  const double factor = 1.0 - recycle_lifetime_jitter + 2.0 * recycle_lifetime_jitter * d;
  return Duration(static_cast<Duration::rep>(std::llround(static_cast<double>(max_lifetime.count()) * factor)));
}

RecycleDecision plan_recycles(const std::vector<RecycleWatch>& watches, const std::vector<RecycleView>& slots,
                              Duration now, bool busy, const RecycleLimits& limits) {
  RecycleDecision d;
  d.next.reserve(slots.size());
  std::vector<RecycleOrder> memory, lifetime;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const RecycleView& v = slots[i];
    const RecycleWatch w = watch_for(i < watches.size() ? &watches[i] : nullptr, v, limits);
    d.next.push_back(w);
    if (!v.eligible || v.pid <= 0 || now < w.not_before) continue;
    RecycleOrder o;
    o.slot = static_cast<int>(i);
    o.pid = v.pid;
    if (limits.max_memory > 0 && w.above >= recycle_memory_samples) {
      o.cause = RecycleCause::memory;
      o.uss = w.last_uss;
      o.limit = limits.max_memory;
      memory.push_back(o);
    } else if (w.lifetime_ends > Duration::zero() && now >= w.lifetime_ends) {
      o.cause = RecycleCause::lifetime;
      lifetime.push_back(o);
    }
  }
  if (busy) return d;
  // Memory first (it costs the machine now), then the lifetimes that ended first.
  std::stable_sort(lifetime.begin(), lifetime.end(), [&](const RecycleOrder& a, const RecycleOrder& b) {
    return d.next[static_cast<std::size_t>(a.slot)].lifetime_ends < d.next[static_cast<std::size_t>(b.slot)].lifetime_ends;
  });
  const auto room = static_cast<std::size_t>(std::max(1, limits.max_surge));
  for (const auto* list : {&memory, &lifetime})
    for (const RecycleOrder& o : *list)
      if (d.recycle.size() < room) d.recycle.push_back(o);
  return d;
}

RecycleWatch after_failed_recycle(RecycleWatch watch, Duration now) {
  watch.not_before = now + recycle_retry_after;
  watch.above = 0;
  return watch;
}

std::string recycle_text(const RecycleOrder& order) {
  switch (order.cause) {
    case RecycleCause::memory:
      // Rounded up: a sample just above the limit must not print as equal to it.
      return fmt::format("memory {} MiB > {} MiB", (order.uss + mib - 1) / mib, order.limit / mib);
    case RecycleCause::lifetime:
      return "lifetime";
  }
  return "unknown";
}

}  // namespace preforkd
