// Steering new connections of a listener's SO_REUSEPORT group among the slots: a
// classic-BPF program that draws among the live slots (balance = "hash", and "load" when
// the master's sampler narrows the set to waiting workers), or the eBPF program of
// os/reuseport_ebpf that balances on load by itself (balance = "load" where it loads).

#include <preforkd/os/listener_set.hpp>

#include "listener_error.hpp"

#include <preforkd/os/sys_error.hpp>

#include <algorithm>
#include <cerrno>
#include <string>

#include <linux/filter.h>
#include <sys/socket.h>

namespace preforkd::os {
namespace {

// From <asm-generic/socket.h>; spelled out so an older libc header set still builds.
constexpr int kAttachReuseportCbpf = 51;  // SO_ATTACH_REUSEPORT_CBPF
constexpr int kDetachReuseportBpf = 68;   // SO_DETACH_REUSEPORT_BPF (Linux 5.3)
// A program result that is no index of the group: the kernel then falls back to its hash.
constexpr std::uint32_t kNoSocket = 0xffffffffu;

std::vector<int> fds_of(const std::vector<Fd>& fds) {
  std::vector<int> out;
  out.reserve(fds.size());
  for (const Fd& fd : fds) out.push_back(fd.get());
  return out;
}

Result<std::vector<int>> normalised(const std::vector<int>& slots, int slot_count) {
  std::vector<int> out = slots;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  for (int slot : out) {
    if (slot < 0 || slot >= slot_count) {
      return Error{"steering: slot " + std::to_string(slot) + " does not exist (" + std::to_string(slot_count) +
                   " slots)"};
    }
  }
  return out;
}

}  // namespace

Status ListenerSet::steer(const std::vector<int>& live_slots, const std::vector<int>& balanced_slots) {
  auto live = normalised(live_slots, slots_);
  if (!live) return Error{live.error()};
  auto balanced = normalised(balanced_slots, slots_);
  if (!balanced) return Error{balanced.error()};
  Status result = Ok{};
  for (Listener& l : listeners_) {
    if (!l.per_slot || l.fds.empty()) continue;
    if (l.config.balance == ListenBalance::load && steer_in_kernel(l, *live)) continue;
    const auto& slots = l.config.balance == ListenBalance::load ? *balanced : *live;
    if (Status st = steer_listener(l, slots); !st && result) result = st;
  }
  return result;
}

bool ListenerSet::steer_in_kernel(Listener& l, const std::vector<int>& live) {
  if (!in_kernel(l)) return false;
  // Where the probe at start succeeded a failure here is rare (memory, a changed kernel
  // policy). The listener goes back to classic BPF and the sampler for good, steering
  // away from dead slots must not stop with it; the reason stays in ebpf_error() for the
  // daemon to report (a failure to steer, reported through steer()'s status, is not one).
  const auto give_up = [&](const std::string& why) {
    l.ebpf_error = why;
    l.ebpf.reset();
    l.steered_slots = -1;
    return false;
  };
  if (!l.ebpf) {
    auto loaded = ReuseportSteering::load();
    if (!loaded) return give_up(loaded.error());
    l.ebpf = std::move(*loaded);
    l.steered_slots = -1;
  }
  if (l.steered_slots == slots_ && live == l.steered && l.steered_pack == pack_) return true;
  if (Status st = l.ebpf->steer(fds_of(l.fds), live, pack_); !st) return give_up(st.error());
  l.steered = live;
  l.steered_pack = pack_;
  l.steered_slots = slots_;
  return true;
}

Status ListenerSet::steer_listener(Listener& l, const std::vector<int>& slots) {
  // The group grew or shrank since (l.fds.size() is the slot count): apply it again.
  if (l.steered_slots == slots_ && slots == l.steered) return Ok{};

  // No live slot, or every slot live: remove the program rather than attach one. The
  // kernel then hashes over the whole group as if steering never existed, with no
  // program to run for each SYN (a program returning an out-of-range index would do the
  // same, at that cost). After unique() and the range check, size == slots_ means 0..n-1.
  const bool detach = slots.empty() || slots.size() == static_cast<std::size_t>(slots_);
  const std::vector<BpfInsn> program = detach ? std::vector<BpfInsn>{} : reuseport_steering_program(slots);
  if (program.size() > BPF_MAXINSNS) {
    return Error{"steering: " + std::to_string(slots.size()) + " live slots need more than " +
                 std::to_string(BPF_MAXINSNS) + " BPF instructions"};
  }
  std::vector<sock_filter> filter;
  filter.reserve(program.size());
  for (const BpfInsn& in : program) filter.push_back(sock_filter{in.code, in.jt, in.jf, in.k});
  sock_fprog fprog{static_cast<unsigned short>(filter.size()), filter.data()};

  l.steered_slots = -1;
  // The program belongs to the group: setting it on any member replaces it for all.
  const int fd = l.fds.front().get();
  if (detach) {
    const int unused = 0;
    if (::setsockopt(fd, SOL_SOCKET, kDetachReuseportBpf, &unused, sizeof unused) != 0 && errno != ENOENT)
      return errno_failure(l.config, "failed to remove connection steering from", errno);
  } else if (::setsockopt(fd, SOL_SOCKET, kAttachReuseportCbpf, &fprog, sizeof fprog) != 0) {
    return errno_failure(l.config, "failed to steer connections of", errno);
  }
  l.steered = slots;
  l.steered_slots = slots_;
  return Ok{};
}

bool ListenerSet::in_kernel(const Listener& l) const {
  return load_steering_ == LoadSteering::ebpf && l.ebpf_error.empty();
}

bool ListenerSet::balances_on_load() const {
  return std::ranges::any_of(listeners_, [this](const Listener& l) {
    return l.per_slot && l.config.balance == ListenBalance::load && !in_kernel(l);
  });
}

std::string ListenerSet::balanced_by(std::size_t listener) const {
  if (listener >= listeners_.size()) return "";
  const Listener& l = listeners_[listener];
  if (!l.per_slot || l.config.balance != ListenBalance::load) return "";
  return in_kernel(l) ? "ebpf" : "sampler";
}

std::string ListenerSet::ebpf_error(std::size_t listener) const {
  return listener < listeners_.size() ? listeners_[listener].ebpf_error : std::string();
}

std::optional<SteerCounts> ListenerSet::steer_counts(std::size_t listener) const {
  if (listener >= listeners_.size() || !listeners_[listener].ebpf) return std::nullopt;
  return listeners_[listener].ebpf->counts();
}

std::vector<BpfInsn> reuseport_steering_program(const std::vector<int>& live_slots) {
  const auto ret_k = [](std::uint32_t k) { return BpfInsn{BPF_RET | BPF_K, 0, 0, k}; };
  if (live_slots.empty()) return {ret_k(kNoSocket)};
  if (live_slots.size() == 1) return {ret_k(static_cast<std::uint32_t>(live_slots[0]))};

  const auto m = static_cast<std::uint32_t>(live_slots.size());
  std::vector<BpfInsn> p;
  p.reserve(2 * live_slots.size() + 1);
  // A = a random draw % m: an index into live_slots.
  p.push_back({BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_RANDOM)});
  p.push_back({BPF_ALU | BPF_MOD | BPF_K, 0, 0, m});
  bool identity = true;
  for (std::uint32_t i = 0; i < m && identity; ++i) identity = live_slots[i] == static_cast<int>(i);
  if (identity) {
    p.push_back({BPF_RET | BPF_A, 0, 0, 0});
    return p;
  }
  // "if A == i return live[i]", with each return right after its test so every jump
  // offset is 0 or 1, however long the chain (jt/jf are only 8 bits).
  for (std::uint32_t i = 0; i + 1 < m; ++i) {
    p.push_back({BPF_JMP | BPF_JEQ | BPF_K, 0, 1, i});
    p.push_back(ret_k(static_cast<std::uint32_t>(live_slots[i])));
  }
  p.push_back(ret_k(static_cast<std::uint32_t>(live_slots[m - 1])));  // A == m - 1
  return p;
}

}  // namespace preforkd::os
