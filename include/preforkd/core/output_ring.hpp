#pragma once
// The recent output of one worker slot, for `preforkctl logs`: the lines the master read
// from its workers' stdout and stderr, as it logged them, oldest dropped first once they
// take more than the slot's worker.log_buffer. Pure: no clock, no I/O; the daemon gives
// each line its time and a sequence number that orders lines across slots.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace preforkd {

// worker.log_buffer: "0" (off) or a size from min_log_buffer to max_log_buffer per slot,
// and count × log_buffer at most max_log_buffer_total (checked by the config and by a
// scale), so the master's memory for worker output is bounded whatever the count.
inline constexpr std::uint64_t default_log_buffer = 64 * 1024;
inline constexpr std::uint64_t min_log_buffer = 1024;
inline constexpr std::uint64_t max_log_buffer = 16 * 1024 * 1024;
inline constexpr std::uint64_t max_log_buffer_total = 256 * 1024 * 1024;
// What one line costs beyond its text: its time, slot, pid, stream and the deque's share.
// Counting it means a flood of empty lines is bounded like any other.
inline constexpr std::size_t output_line_overhead = 64;

enum class OutputStream { out, err };
[[nodiscard]] const char* to_string(OutputStream stream);  // "stdout", "stderr"

struct OutputLine {
  std::uint64_t seq = 0;  // the order the master read lines in, across every slot
  double unix_time = 0;   // when the master read it
  int slot = 0;
  pid_t pid = 0;
  OutputStream stream = OutputStream::out;
  std::string text;
  bool operator==(const OutputLine&) const = default;
};

class OutputRing {
 public:
  explicit OutputRing(std::size_t capacity) : capacity_(capacity) {}

  // Keeps `line`, cut to what the capacity can hold, then drops the oldest lines until
  // the ring fits. A ring of capacity 0 keeps nothing.
  void push(OutputLine line);
  // A new capacity; a smaller one drops the oldest lines at once.
  void resize(std::size_t capacity);
  // The newest `n` lines (fewer when it has fewer), oldest first.
  [[nodiscard]] std::vector<OutputLine> last(std::size_t n) const;

  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  [[nodiscard]] std::size_t bytes() const { return bytes_; }  // texts plus output_line_overhead each
  [[nodiscard]] std::size_t size() const { return lines_.size(); }
  [[nodiscard]] std::uint64_t dropped() const { return dropped_; }  // lines dropped to make room

 private:
  void fit();
  std::size_t capacity_;
  std::size_t bytes_ = 0;
  std::uint64_t dropped_ = 0;
  std::deque<OutputLine> lines_;
};

// The newest `n` lines of each ring, merged in the order they were read (by seq). When
// their texts pass `max_bytes` together, the oldest are left out: a reply stays bounded
// whatever the buffers hold.
[[nodiscard]] std::vector<OutputLine> merge_latest(const std::vector<const OutputRing*>& rings, std::size_t n,
                                                   std::size_t max_bytes);

}  // namespace preforkd
