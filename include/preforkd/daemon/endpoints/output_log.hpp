#pragma once
// The master's memory of its workers' recent output, for `preforkctl logs`: one
// core::OutputRing per slot (worker.log_buffer bytes each), fed with each line the master
// reads from a worker's stdout or stderr as it logs it, and the followers (`logs -f`) that
// get each new line as it comes.
//
// Bounds: every ring holds at most worker.log_buffer; a reply carries at most
// control::max_logs_reply_bytes of text; at most max_followers follow at once, and each
// gets what the control server lets it leave unread (max_unsent_bytes): past that its
// lines are dropped and it is told how many when it reads again.

#include <preforkd/core/output_ring.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/daemon/endpoints/control_server.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string_view>
#include <vector>

namespace preforkd::daemon {

class OutputLog {
 public:
  // Followers at once: each holds a control connection (of limits::control_clients).
  static constexpr std::size_t max_followers = 16;

  explicit OutputLog(std::size_t capacity) : capacity_(capacity) {}

  // worker.log_buffer, at start and at each reload: a smaller one drops the oldest lines.
  void set_capacity(std::size_t capacity);
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  // Forgets the lines of slots `count` and above (a scale down, a reload to fewer workers),
  // so that the rings never outnumber the slots that count × log_buffer was checked for.
  void drop_slots_from(int count) { rings_.erase(rings_.lower_bound(count), rings_.end()); }

  // A line the master read from worker `pid` of `slot` (after logging it).
  void add(int slot, pid_t pid, OutputStream stream, std::string_view text);

  // The last `n` lines of each of `slots` (all when empty), in the order they were read.
  [[nodiscard]] std::vector<OutputLine> latest(const std::vector<int>& slots, int n) const;

  // Sends each new line of `slots` (all when empty) through `push` until it reports the
  // client gone. An error when max_followers already follow.
  [[nodiscard]] Status follow(std::vector<int> slots, ControlServer::Push push);
  [[nodiscard]] std::size_t followers() const { return followers_.size(); }

 private:
  struct Follower {
    std::vector<int> slots;
    ControlServer::Push push;
    std::uint64_t dropped = 0;  // lines not sent since the last one that was
  };
  // Sends `line` to `f`; false when its client is gone.
  static bool deliver(Follower& f, const OutputLine& line);

  std::size_t capacity_;
  std::map<int, OutputRing> rings_;
  std::uint64_t next_seq_ = 1;
  std::vector<Follower> followers_;
};

}  // namespace preforkd::daemon
