#pragma once
// The listening sockets the master binds and holds for the life of each worker slot.
//
// reuseport listeners have one SO_REUSEPORT socket per slot, joined to the kernel's
// socket group in slot order, so that slot i is index i of the group. Sockets are only
// ever added at the end and removed from the end: closing one in the middle would move
// the last socket into its place and break that mapping. shared listeners (and every
// unix: listener, which has no SO_REUSEPORT) have one socket for all slots.

#include <preforkd/core/config.hpp>
#include <preforkd/core/master_state.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/os/fd.hpp>
#include <preforkd/os/reuseport_ebpf.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace preforkd::os {

// How listeners with balance = "load" steer new connections (preforkd.ebpf).
enum class LoadSteering {
  ebpf,     // the kernel program (os/reuseport_ebpf) picks a slot for each connection
  sampler,  // the master samples workers and re-attaches a classic-BPF program (daemon/balancer)
};

class ListenerSet {
 public:
  ListenerSet() = default;
  ListenerSet(ListenerSet&&) noexcept = default;
  ListenerSet& operator=(ListenerSet&&) noexcept = default;
  ~ListenerSet();  // unlinks the unix socket files it created

  // Binds every listener for `slots` slots. Errors read
  // "failed to bind '127.0.0.1:80': permission denied" (listener name in the message too).
  // An address some other socket listens on is refused, also when that socket has
  // SO_REUSEPORT ("address already in use by pid 1234 (nginx)"): a reuseport listener
  // never joins someone else's group.
  [[nodiscard]] static Result<ListenerSet> open(const std::vector<ListenConfig>& listeners, int slots);

  // The set for a reloaded config with the slot count of `previous`: a listener whose
  // address `previous` already has shares its sockets (dup'd fds of the same kernel
  // sockets, so queued connections and group order are kept, and the unix socket file
  // moves to the new set); others are bound anew. On failure nothing has changed.
  [[nodiscard]] static Result<ListenerSet> reopen(const std::vector<ListenConfig>& listeners, ListenerSet& previous);

  // Adds sockets for slots [slot_count(), slots). Nothing changes on failure.
  [[nodiscard]] Status grow(int slots);
  // Closes the sockets of slots [slots, slot_count()), highest first.
  void shrink(int slots);
  [[nodiscard]] int slot_count() const { return slots_; }

  // The fds a worker in `slot` gets, one per listener, in config order.
  [[nodiscard]] std::vector<int> fds_for_slot(int slot) const;
  // "http:admin": the LISTEN_FDNAMES value.
  [[nodiscard]] std::string fd_names() const;

  // Steering (listener_steering.cpp). Steers new connections of every reuseport listener
  // to the given slots only, with a classic-BPF reuseport program. An empty list removes
  // steering (the kernel hashes over every socket). Idempotent; cheap to call whenever
  // the live set changes.
  [[nodiscard]] Status steer(const std::vector<int>& live_slots) { return steer(live_slots, live_slots); }
  // The same, with `balanced_slots` (a subset of the live slots: those whose workers
  // wait for a connection) for listeners with balance = "load" that the master's sampler
  // steers, and `live_slots` for those with balance = "hash" and for load listeners
  // steered by the eBPF program (which balances among the live slots by itself). A
  // listener's program is re-attached only when its set changes.
  [[nodiscard]] Status steer(const std::vector<int>& live_slots, const std::vector<int>& balanced_slots);
  // How balance = "load" listeners steer: the eBPF program where it loads (a listener
  // whose program fails falls back to the sampler: ebpf_error()), or always the
  // sampler. Set before the first steer(); a reopened set keeps its predecessor's, and
  // loads the program again for each listener, also one that had fallen back.
  void use_load_steering(LoadSteering how) { load_steering_ = how; }
  // Whether load listeners steered by the eBPF program pack new connections on the
  // lowest waiting slot (an adaptive pool, so the workers above it wait and retire)
  // rather than spread them from the hash's pick. Applied at the next steer().
  void pack_load(bool pack) { pack_ = pack; }
  // Whether any listener has per-slot sockets with balance = "load" steered by the
  // master's sampler (worth sampling for).
  [[nodiscard]] bool balances_on_load() const;
  // How `listener` balances: "ebpf" or "sampler" for balance = "load" with per-slot
  // sockets, "" otherwise (hash, shared, unix).
  [[nodiscard]] std::string balanced_by(std::size_t listener) const;
  // Why the eBPF program of a load listener failed while the master ran (a map update
  // refused, a load that failed), so that the sampler balances it from then on; "" when
  // it did not fail. The caller reports it: steer() succeeds when the fallback steers.
  [[nodiscard]] std::string ebpf_error(std::size_t listener) const;
  // What the eBPF program of `listener` did so far (nullopt when it has none).
  [[nodiscard]] std::optional<SteerCounts> steer_counts(std::size_t listener) const;
  // The inodes of every socket of the set.
  [[nodiscard]] std::vector<std::uint64_t> socket_inodes() const;
  // The inodes of the sockets a worker in `slot` gets (to recognise them in /proc).
  [[nodiscard]] std::vector<ino_t> socket_inodes_for_slot(int slot) const;
  // Connections waiting in the accept queues of `slot`'s load-balanced sockets, summed.
  [[nodiscard]] int balanced_queue_depth(int slot) const;

  // Connections waiting in the accept queue of a listener's socket for `slot`
  // (TCP_INFO on the listening socket; -1 for unix sockets or on error).
  [[nodiscard]] int accept_queue_depth(std::size_t listener, int slot) const;

  [[nodiscard]] const std::vector<ListenConfig>& configs() const { return configs_; }

  // In-place upgrade (listener_handoff.cpp): the sockets as the old image hands them on,
  // and the set the new image builds from them, checked against the config's listeners.
  [[nodiscard]] std::vector<ListenerState> handoff() const;
  [[nodiscard]] static Result<ListenerSet> adopt(const std::vector<ListenConfig>& listeners, int slots,
                                                 const std::vector<ListenerState>& handed);

  // systemd's fd store (daemon/fd_store): why an inherited `fd` is not the socket
  // `listener` asks for, or nullopt when it is: a listening stream socket of the same
  // family, bound to the same address (any port when the config says port 0), with
  // SO_REUSEPORT exactly when the listener has per-slot sockets.
  [[nodiscard]] static std::optional<std::string> inherited_mismatch(int fd, const ListenConfig& listener);
  // The set built from sockets taken back from the store: per listener, the fds of slots
  // 0..k-1 (or its one shared socket), owned from here on; what is missing is bound
  // (new per-slot sockets join the end of the group, so slot i stays index i).
  [[nodiscard]] static Result<ListenerSet> take_inherited(const std::vector<ListenConfig>& listeners, int slots,
                                                          const std::vector<std::vector<int>>& taken);

 private:
  // A unix socket file this set created. Unlinked when destroyed (also when a set is
  // move-assigned over), and only while the path is still that same file.
  struct SocketFile {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
    bool owned = false;
    SocketFile() = default;
    SocketFile(SocketFile&& o) noexcept;
    SocketFile& operator=(SocketFile&& o) noexcept;
    ~SocketFile();
    void remove();
  };
  struct Listener {
    ListenConfig config;
    bool per_slot = false;  // reuseport and not unix
    std::vector<Fd> fds;    // per slot, or a single shared one
    SocketFile socket_file;
    std::vector<int> steered;   // last slot set applied to its group
    int steered_slots = -1;     // slot count when `steered` was applied; -1: nothing valid
    bool steered_pack = false;  // the eBPF program's `pack` when `steered` was applied
    std::unique_ptr<ReuseportSteering> ebpf;  // balance = "load" in the kernel, once loaded
    std::string ebpf_error;                   // why it failed ("": it did not); the sampler steers
  };
  // Binds a listener that is new to this master. `own_inodes`: the master's sockets so
  // far, which do not count as the address being taken.
  Status bind_listener(Listener& l, int slots, const std::vector<std::uint64_t>& own_inodes);
  Status steer_listener(Listener& l, const std::vector<int>& slots);
  // Whether a load listener is balanced by the kernel program (loaded, or to be loaded
  // at its next steer) rather than the sampler.
  [[nodiscard]] bool in_kernel(const Listener& l) const;
  // The eBPF path of a load listener; false when it has no program (it failed: the
  // listener's ebpf_error says why, and classic BPF steers it).
  bool steer_in_kernel(Listener& l, const std::vector<int>& live);
  // Binds the sockets a listener is missing: all of them, or per-slot ones up to `slots`.
  Status complete_listener(Listener& l, int slots, const std::vector<std::uint64_t>& own_inodes);

  std::vector<ListenConfig> configs_;
  std::vector<Listener> listeners_;
  int slots_ = 0;
  LoadSteering load_steering_ = LoadSteering::sampler;
  bool pack_ = false;
};

// Builds the classic-BPF program that maps a random draw onto `live_slots`
// (exposed for unit tests). Each instruction is {code, jt, jf, k}.
struct BpfInsn {
  std::uint16_t code;
  std::uint8_t jt;
  std::uint8_t jf;
  std::uint32_t k;
};
[[nodiscard]] std::vector<BpfInsn> reuseport_steering_program(const std::vector<int>& live_slots);

}  // namespace preforkd::os
