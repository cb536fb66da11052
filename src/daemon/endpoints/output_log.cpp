#include <preforkd/daemon/endpoints/output_log.hpp>

#include <preforkd/core/control_protocol.hpp>

#include <algorithm>
#include <chrono>
#include <string>

namespace preforkd::daemon {

void OutputLog::set_capacity(std::size_t capacity) {
  capacity_ = capacity;
  for (auto& [slot, ring] : rings_) ring.resize(capacity);
}

void OutputLog::add(int slot, pid_t pid, OutputStream stream, std::string_view text) {
  if (capacity_ == 0 && followers_.empty()) return;
  OutputLine line;
  line.seq = next_seq_++;
  line.unix_time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  line.slot = slot;
  line.pid = pid;
  line.stream = stream;
  line.text = std::string(text);
  if (!followers_.empty()) {
    std::erase_if(followers_, [&](Follower& f) { return !deliver(f, line); });
  }
  if (capacity_ == 0) return;
  auto ring = rings_.find(slot);
  if (ring == rings_.end()) ring = rings_.emplace(slot, OutputRing(capacity_)).first;
  ring->second.push(std::move(line));
}

bool OutputLog::deliver(Follower& f, const OutputLine& line) {
  if (!f.slots.empty() && !std::binary_search(f.slots.begin(), f.slots.end(), line.slot)) return true;
  if (f.dropped > 0) {
    switch (f.push(nlohmann::json{{"dropped", f.dropped}})) {
      case ControlServer::Pushed::gone: return false;
      case ControlServer::Pushed::dropped: ++f.dropped; return true;
      case ControlServer::Pushed::sent: f.dropped = 0; break;
    }
  }
  switch (f.push(nlohmann::json{{"line", control::log_line_json(line)}})) {
    case ControlServer::Pushed::gone: return false;
    case ControlServer::Pushed::dropped: ++f.dropped; return true;
    case ControlServer::Pushed::sent: return true;
  }
  return true;
}

std::vector<OutputLine> OutputLog::latest(const std::vector<int>& slots, int n) const {
  std::vector<const OutputRing*> rings;
  for (const auto& [slot, ring] : rings_) {
    if (slots.empty() || std::binary_search(slots.begin(), slots.end(), slot)) rings.push_back(&ring);
  }
  return merge_latest(rings, static_cast<std::size_t>(std::max(n, 0)), control::max_logs_reply_bytes);
}

Status OutputLog::follow(std::vector<int> slots, ControlServer::Push push) {
  // Clients that hung up since the last line leave room.
  std::erase_if(followers_, [](Follower& f) { return f.push(nullptr) == ControlServer::Pushed::gone; });
  if (followers_.size() >= max_followers)
    return Error{"logs: " + std::to_string(max_followers) + " clients follow already; try again without -f"};
  followers_.push_back(Follower{std::move(slots), std::move(push), 0});
  return Ok{};
}

}  // namespace preforkd::daemon
