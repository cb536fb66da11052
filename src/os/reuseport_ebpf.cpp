// Loading and feeding the eBPF reuseport program (src/bpf/reuseport_steer.bpf.c).
// libbpf (Debian's libbpf-dev) does the loading: it relocates the program's field
// offsets against the running kernel's BTF (CO-RE), which is why the program runs on any
// kernel with BTF without being rebuilt; writing that by hand would be a BTF parser.

#include <preforkd/os/reuseport_ebpf.hpp>

#include <preforkd/core/limits.hpp>
#include <preforkd/os/sys_error.hpp>

#include "../bpf/steer_rank.h"

#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <mutex>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/socket.h>
#include <unistd.h>

// The object file clang built from reuseport_steer.bpf.c (cmake/embed_file.cmake).
extern "C" const unsigned char preforkd_reuseport_steer_object[];
extern "C" const std::size_t preforkd_reuseport_steer_object_size;

namespace preforkd::os {
namespace {

static_assert(PREFORKD_STEER_MAX_SLOTS == max_workers,
              "the eBPF program's map sizes must hold every slot a master can have");

// From <asm-generic/socket.h>; spelled out so an older libc header set still builds.
constexpr int kAttachReuseportEbpf = 52;  // SO_ATTACH_REUSEPORT_EBPF

// The live map's value, as the program declares it.
struct LiveSlots {
  std::uint32_t count = 0;
  std::uint32_t pack = 0;
  std::array<std::uint32_t, PREFORKD_STEER_MAX_SLOTS> slots{};
};

// libbpf prints through a callback; its warnings (the verifier's log on a failed load)
// are kept for the error message instead of going to stderr, and its debug chatter dropped.
std::string& libbpf_messages() {
  static std::string text;
  return text;
}
int collect_libbpf_message(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  std::array<char, 512> line{};
  const int n = std::vsnprintf(line.data(), line.size(), format, args);
  std::string& text = libbpf_messages();
  if (n > 0 && text.size() < 4096) text.append(line.data(), std::min<std::size_t>(static_cast<std::size_t>(n), line.size() - 1));
  return 0;
}

// The last line libbpf printed (the most specific), without its trailing newline.
std::string last_libbpf_line() {
  std::string text = libbpf_messages();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const auto nl = text.rfind('\n');
  return nl == std::string::npos ? text : text.substr(nl + 1);
}

Error load_error(std::string_view what, int err) {
  std::string message = "eBPF steering: cannot " + std::string(what) + ": " + errno_text(err);
  if (std::string detail = last_libbpf_line(); !detail.empty()) message += " (libbpf: " + detail + ")";
  return Error{std::move(message)};
}

// Whether index `key` of a SOCKMAP holds no socket. A lookup from user space reads the
// socket's cookie; an index without one answers ENOENT.
bool sockmap_slot_empty(int map, std::uint32_t key) {
  std::uint64_t cookie = 0;
  return bpf_map_lookup_elem(map, &key, &cookie) != 0 && errno == ENOENT;
}

std::uint64_t socket_cookie(int fd) {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return 0;
  return cookie;
}

}  // namespace

void ReuseportSteering::ObjectClose::operator()(bpf_object* o) const { bpf_object__close(o); }

ReuseportSteering::~ReuseportSteering() = default;

Result<std::unique_ptr<ReuseportSteering>> ReuseportSteering::load() {
  static std::once_flag print_set;
  std::call_once(print_set, [] { libbpf_set_print(collect_libbpf_message); });
  libbpf_messages().clear();

  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "preforkd_steer");
  bpf_object* raw = bpf_object__open_mem(preforkd_reuseport_steer_object, preforkd_reuseport_steer_object_size, &opts);
  if (raw == nullptr) return load_error("open the program", errno);
  std::unique_ptr<ReuseportSteering> s(new ReuseportSteering());
  s->object_.reset(raw);
  if (const int err = bpf_object__load(raw); err != 0) return load_error("load the program", -err);

  bpf_program* program = bpf_object__find_program_by_name(raw, "steer");
  s->program_ = program != nullptr ? bpf_program__fd(program) : -1;
  s->sockets_ = bpf_object__find_map_fd_by_name(raw, "sockets");
  s->live_ = bpf_object__find_map_fd_by_name(raw, "live");
  s->live_in_use_ = bpf_object__find_map_fd_by_name(raw, "live_in_use");
  s->outcomes_ = bpf_object__find_map_fd_by_name(raw, "outcomes");
  if (s->program_ < 0 || s->sockets_ < 0 || s->live_ < 0 || s->live_in_use_ < 0 || s->outcomes_ < 0)
    return Error{"eBPF steering: the built-in program lacks a map or its entry point"};
  return s;
}

Status ReuseportSteering::steer(const std::vector<int>& fds, const std::vector<int>& live, bool pack) {
  if (fds.size() > PREFORKD_STEER_MAX_SLOTS || live.size() > PREFORKD_STEER_MAX_SLOTS) {
    return Error{"eBPF steering: " + std::to_string(fds.size()) + " sockets and " + std::to_string(live.size()) +
                 " live slots, at most " + std::to_string(PREFORKD_STEER_MAX_SLOTS)};
  }
  // In the order that never lets the program pick a slot whose index is empty: a new
  // socket is in the map before the live set names its slot, and a removed slot left
  // the live set before its index is emptied (the supervisor takes a slot out of the
  // live set before its socket closes). The program is attached last, once, with both
  // in place: until then the group hashes as if it had none.
  if (Status st = add_sockets(fds); !st) return st;
  if (Status st = set_live(live, pack); !st) return st;
  if (Status st = remove_sockets_from(fds.size()); !st) return st;
  if (!attached_ && !fds.empty()) {
    // The program belongs to the group: attaching it on any member replaces whatever
    // program (classic or eBPF) the group had.
    if (::setsockopt(fds.front(), SOL_SOCKET, kAttachReuseportEbpf, &program_, sizeof program_) != 0)
      return errno_error("attach the eBPF steering program to", "the socket of slot 0");
    attached_ = true;
  }
  return Ok{};
}

Status ReuseportSteering::add_sockets(const std::vector<int>& fds) {
  for (std::size_t i = 0; i < fds.size(); ++i) {
    const std::uint64_t cookie = socket_cookie(fds[i]);
    if (i < known_.size() && cookie != 0 && known_[i] == cookie) continue;
    const auto key = static_cast<std::uint32_t>(i);
    const auto value = static_cast<std::uint64_t>(fds[i]);
    if (bpf_map_update_elem(sockets_, &key, &value, BPF_ANY) != 0)
      return errno_error("add to the eBPF steering map", "socket of slot " + std::to_string(i));
    if (known_.size() <= i) known_.resize(i + 1, 0);
    known_[i] = cookie;
  }
  return Ok{};
}

Status ReuseportSteering::remove_sockets_from(std::size_t count) {
  // Slots removed since: their sockets leave the map when closed, unless another set of
  // the master still holds them (a reload in progress), so remove them here. Usually the
  // socket is closed already and its index empty, and deleting an empty index of a
  // SOCKMAP fails with EINVAL, not ENOENT (FACTS.md): an index that holds no socket
  // afterwards is what was wanted, whatever the delete answered.
  for (std::size_t i = count; i < known_.size(); ++i) {
    const auto key = static_cast<std::uint32_t>(i);
    if (bpf_map_delete_elem(sockets_, &key) == 0) continue;
    const int err = errno;
    if (err == ENOENT || sockmap_slot_empty(sockets_, key)) continue;
    return errno_error("remove from the eBPF steering map", "socket of slot " + std::to_string(i), err);
  }
  if (known_.size() > count) known_.resize(count);
  return Ok{};
}

Status ReuseportSteering::set_live(const std::vector<int>& slots, bool pack) {
  auto value = std::make_unique<LiveSlots>();
  value->count = static_cast<std::uint32_t>(slots.size());
  value->pack = pack ? 1U : 0U;
  for (std::size_t i = 0; i < slots.size(); ++i) value->slots[i] = static_cast<std::uint32_t>(slots[i]);
  // The entry the program does not read, then the switch to it (one aligned 4-byte store):
  // a connection arriving meanwhile reads the old set whole, never a mix of both.
  const std::uint32_t next = live_in_use_entry_ ^ 1U;
  if (bpf_map_update_elem(live_, &next, value.get(), BPF_ANY) != 0)
    return errno_error("update", "the eBPF steering program's live slots");
  const std::uint32_t zero = 0;
  if (bpf_map_update_elem(live_in_use_, &zero, &next, BPF_ANY) != 0)
    return errno_error("update", "the eBPF steering program's live slots");
  live_in_use_entry_ = next;
  return Ok{};
}

SteerCounts ReuseportSteering::counts() const {
  SteerCounts total;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return total;
  std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
  std::array<std::uint64_t*, 3> into{&total.to_waiting, &total.to_busy, &total.to_hash};
  for (std::uint32_t key = 0; key < into.size(); ++key) {
    if (bpf_map_lookup_elem(outcomes_, &key, per_cpu.data()) != 0) continue;
    for (std::uint64_t n : per_cpu) *into[key] += n;
  }
  return total;
}

std::optional<std::string> reuseport_steering_unavailable() {
  auto probe = ReuseportSteering::load();
  if (!probe) return probe.error();
  return std::nullopt;
}

}  // namespace preforkd::os
