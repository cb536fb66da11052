#include <preforkd/core/output_ring.hpp>

#include <algorithm>

namespace preforkd {

const char* to_string(OutputStream stream) {
  switch (stream) {
    case OutputStream::out: return "stdout";
    case OutputStream::err: return "stderr";
  }
  return "?";
}

namespace {

std::size_t cost(const OutputLine& line) { return line.text.size() + output_line_overhead; }

// Cuts `text` to at most `max` bytes on a UTF-8 character boundary.
void cut(std::string& text, std::size_t max) {
  if (text.size() <= max) return;
  std::size_t at = max;
  while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
  text.resize(at);
}

}  // namespace

void OutputRing::push(OutputLine line) {
  if (capacity_ < output_line_overhead) {
    ++dropped_;
    return;
  }
  cut(line.text, capacity_ - output_line_overhead);
  bytes_ += cost(line);
  lines_.push_back(std::move(line));
  fit();
}

void OutputRing::resize(std::size_t capacity) {
  capacity_ = capacity;
  fit();
}

void OutputRing::fit() {
  while (bytes_ > capacity_ && !lines_.empty()) {
    bytes_ -= cost(lines_.front());
    lines_.pop_front();
    ++dropped_;
  }
}

std::vector<OutputLine> OutputRing::last(std::size_t n) const {
  const std::size_t take = std::min(n, lines_.size());
  return {lines_.end() - static_cast<std::ptrdiff_t>(take), lines_.end()};
}

std::vector<OutputLine> merge_latest(const std::vector<const OutputRing*>& rings, std::size_t n,
                                     std::size_t max_bytes) {
  std::vector<OutputLine> all;
  for (const OutputRing* ring : rings) {
    if (ring == nullptr) continue;
    auto lines = ring->last(n);
    std::move(lines.begin(), lines.end(), std::back_inserter(all));
  }
  std::sort(all.begin(), all.end(), [](const OutputLine& a, const OutputLine& b) { return a.seq < b.seq; });
  // Keep the newest that fit in max_bytes.
  std::size_t bytes = 0;
  std::size_t first = all.size();
  while (first > 0 && bytes + all[first - 1].text.size() <= max_bytes) {
    bytes += all[first - 1].text.size();
    --first;
  }
  all.erase(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(first));
  return all;
}

}  // namespace preforkd
