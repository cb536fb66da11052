#pragma once
// Balanced accept in the kernel: the eBPF SK_REUSEPORT program of src/bpf/ (built into
// the binary) loaded for one reuseport listener. For each new connection it ranks the
// live slots by what the kernel knows at that moment (accept queue, whether a worker
// sleeps on the socket) and picks the best; the master only tells it the slot sockets
// and the live set. Needs Linux 6.2+ with BTF and CAP_BPF, CAP_NET_ADMIN and
// CAP_PERFMON (root); where loading fails, the caller falls back to classic BPF and the
// /proc sampler (daemon/balancer).

#include <preforkd/core/result.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct bpf_object;

namespace preforkd::os {

// What the program did with the connections it saw, summed over CPUs.
struct SteerCounts {
  std::uint64_t to_waiting = 0;  // sent to a worker that was waiting
  std::uint64_t to_busy = 0;     // every live worker was busy: the best of them
  std::uint64_t to_hash = 0;     // no live slot: left to the kernel's hash
};

class ReuseportSteering {
 public:
  // Loads the program and its maps (the verifier runs here). Errors read
  // "eBPF steering: cannot load the program: operation not permitted".
  [[nodiscard]] static Result<std::unique_ptr<ReuseportSteering>> load();
  ReuseportSteering(const ReuseportSteering&) = delete;
  ReuseportSteering& operator=(const ReuseportSteering&) = delete;
  ~ReuseportSteering();

  // Makes `fds` (slot i's socket at index i, all of one reuseport group) the sockets to
  // steer over and `live` (slot numbers, each below fds.size()) the slots new connections
  // may go to, empty: the kernel's hash over the whole group; `pack`: among waiting
  // workers the lowest live slot wins rather than the one after the hash (steer_rank.h);
  // attaches the program to the group once. Sockets already known are kept; a closed
  // socket leaves the map by itself.
  [[nodiscard]] Status steer(const std::vector<int>& fds, const std::vector<int>& live, bool pack = false);
  [[nodiscard]] SteerCounts counts() const;

 private:
  ReuseportSteering() = default;
  [[nodiscard]] Status add_sockets(const std::vector<int>& fds);
  // Empties the map's indices from `count` on.
  [[nodiscard]] Status remove_sockets_from(std::size_t count);
  [[nodiscard]] Status set_live(const std::vector<int>& slots, bool pack);
  struct ObjectClose {
    void operator()(bpf_object* o) const;
  };
  std::unique_ptr<bpf_object, ObjectClose> object_;
  int program_ = -1;
  int sockets_ = -1;
  int live_ = -1;
  int live_in_use_ = -1;
  std::uint32_t live_in_use_entry_ = 0;  // which of the two live entries the program reads
  int outcomes_ = -1;
  std::vector<std::uint64_t> known_;  // the socket cookie in each map index, 0: none
  bool attached_ = false;
};

// Why eBPF steering cannot be used on this machine (loads the program once and drops
// it), or nullopt when it can.
[[nodiscard]] std::optional<std::string> reuseport_steering_unavailable();

}  // namespace preforkd::os
