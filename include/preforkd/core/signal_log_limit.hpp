#pragma once
// How often the master logs a signal it ignores: at most one line per signal number per
// window (a second), so a storm (a script looping on kill, a terminal being resized) cannot
// flood the log. The first signal of a burst is logged when it arrives; those after it are
// counted, and the count is logged in one line when the window ends. A window that ended with
// a count opens the next, so a storm that lasts gives one line per window. Pure: the caller
// passes the (monotonic) time. Table-tested in tests/unit/test_signal_log_limit.cpp.

#include <preforkd/core/units.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace preforkd {

inline constexpr Duration ignored_signal_log_window = std::chrono::seconds(1);

class SignalLogLimit {
 public:
  explicit SignalLogLimit(Duration window = ignored_signal_log_window) : window_(window) {}

  // True: log this one now. False: it is counted, and due() reports the count.
  [[nodiscard]] bool arrive(int sig, Duration now);

  struct Count {
    int sig = 0;
    std::uint64_t count = 0;  // signals not logged one by one
    Duration over{};          // since the window opened
    bool operator==(const Count&) const = default;
  };
  // The counts of the windows that have ended by `now`, in signal order.
  [[nodiscard]] std::vector<Count> due(Duration now);
  // When the first window that holds a count ends (for a timer); nullopt when none does.
  [[nodiscard]] std::optional<Duration> next_due() const;

 private:
  struct Window {
    Duration start{};
    std::uint64_t count = 0;
  };
  Duration window_;
  std::map<int, Window> windows_;
};

}  // namespace preforkd
