#include <preforkd/core/signal_log_limit.hpp>

#include <algorithm>

namespace preforkd {

bool SignalLogLimit::arrive(int sig, Duration now) {
  auto it = windows_.find(sig);
  // A count not reported yet takes this one too (the timer that reports it may be late).
  if (it != windows_.end() && (now < it->second.start + window_ || it->second.count > 0)) {
    ++it->second.count;
    return false;
  }
  windows_[sig] = Window{now, 0};
  return true;
}

std::vector<SignalLogLimit::Count> SignalLogLimit::due(Duration now) {
  std::vector<Count> counts;
  for (auto it = windows_.begin(); it != windows_.end();) {
    Window& w = it->second;
    if (now < w.start + window_) {
      ++it;
      continue;
    }
    if (w.count == 0) {
      it = windows_.erase(it);
      continue;
    }
    counts.push_back(Count{it->first, w.count, now - w.start});
    w = Window{now, 0};
    ++it;
  }
  return counts;
}

std::optional<Duration> SignalLogLimit::next_due() const {
  std::optional<Duration> next;
  for (const auto& [sig, w] : windows_)
    if (w.count > 0) next = std::min(next.value_or(w.start + window_), w.start + window_);
  return next;
}

}  // namespace preforkd
