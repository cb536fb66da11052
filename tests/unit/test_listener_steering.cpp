// Steering new connections among the slots of a SO_REUSEPORT group: the classic-BPF
// program's shapes (run here as the kernel would), the live and balanced sets, and the eBPF
// program that sends a connection to a waiting slot (src/os/listener_steering.cpp).

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <sys/syscall.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <numeric>

#include "../support/skip.hpp"
#include "listener_helpers.hpp"

using namespace listener_test;
using preforkd::os::BpfInsn;
using preforkd::os::reuseport_steering_program;

namespace {

// Runs a steering program as the kernel would, with `draw` as the random number.
std::uint32_t run(const std::vector<BpfInsn>& p, std::uint32_t draw) {
  std::uint32_t a = 0;
  for (std::size_t pc = 0; pc < p.size(); ++pc) {
    const BpfInsn& in = p[pc];
    switch (in.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        REQUIRE(in.k == static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_RANDOM));
        a = draw;
        break;
      case BPF_ALU | BPF_MOD | BPF_K:
        REQUIRE(in.k != 0);
        a %= in.k;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        pc += a == in.k ? in.jt : in.jf;
        break;
      case BPF_RET | BPF_K:
        return in.k;
      case BPF_RET | BPF_A:
        return a;
      default:
        FAIL("unexpected instruction " << in.code);
    }
  }
  FAIL("the program ran off its end");
  return 0;
}

bool kernel_accepts(const std::vector<BpfInsn>& p) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  REQUIRE(::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  REQUIRE(::listen(fd.get(), 1) == 0);
  std::vector<sock_filter> f;
  for (const BpfInsn& in : p) f.push_back({in.code, in.jt, in.jf, in.k});
  sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
  return ::setsockopt(fd.get(), SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0;
}

// Blocks a thread in accept() on `fd` and returns once the kernel shows it asleep there
// (/proc/self/task/<tid>/syscall starts with accept's or accept4's number).
class AcceptingThread {
 public:
  explicit AcceptingThread(int fd) : fd_(fd), thread_([this] {
    tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
    accepted_ = ::accept(fd_, nullptr, nullptr);
    error_ = errno;
    done_ = true;
  }) {}
  // A thread still in accept() is woken by shutting the socket down (accept fails).
  ~AcceptingThread() {
    if (!done_) ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    if (accepted_ >= 0) ::close(accepted_);
  }
  AcceptingThread(const AcceptingThread&) = delete;
  AcceptingThread& operator=(const AcceptingThread&) = delete;
  // What accept() failed with, once it returned (for a failure's report).
  [[nodiscard]] int error() const { return error_.load(); }
  [[nodiscard]] const std::string& last_seen() const { return last_seen_; }
  bool wait_blocked() const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (const pid_t tid = tid_.load(); tid > 0) {
        std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
        std::string nr;
        in >> nr;
        last_seen_ = nr;
        if (nr == std::to_string(SYS_accept) || nr == std::to_string(SYS_accept4)) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  [[nodiscard]] int accepted() const { return accepted_.load(); }

 private:
  int fd_;
  mutable std::string last_seen_;  // the last syscall number read (for a failure's report)
  std::atomic<int> error_{0};
  std::atomic<pid_t> tid_{0};
  std::atomic<int> accepted_{-1};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("steering sends new connections only to the live slots") {
  auto set = open_tcp(3);
  REQUIRE(set.steer({1}).ok());
  CHECK(connect_and_count(set, kConnections) == std::vector<int>{0, kConnections, 0});

  REQUIRE(set.steer({0, 2}).ok());
  const auto counts = connect_and_count(set, kConnections);
  CHECK(counts[1] == 0);
  CHECK(counts[0] + counts[2] == kConnections);
  CHECK(counts[0] > 0);  // each misses with probability 2^-20
  CHECK(counts[2] > 0);

  REQUIRE(set.steer({}).ok());
  const auto spread = connect_and_count(set, kConnections);
  CHECK(spread[0] + spread[1] + spread[2] == kConnections);

  CHECK_FALSE(set.steer({3}).ok());
  CHECK_FALSE(set.steer({-1}).ok());
}

TEST_CASE("steer skips an unchanged live set until the slot count changes") {
  auto set = open_tcp(3);
  REQUIRE(set.steer({1}).ok());
  // Remove the program behind the set's back: an unchanged steer() does not notice.
  const int unused = 0;
  const int member = set.fds_for_slot(0)[0];
  REQUIRE(::setsockopt(member, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &unused, sizeof unused) == 0);
  REQUIRE(set.steer({1}).ok());
  CHECK(connect_and_count(set, kConnections)[1] < kConnections);  // hashed: misses with probability 3^-20

  REQUIRE(set.grow(4).ok());
  REQUIRE(set.steer({1}).ok());
  CHECK(connect_and_count(set, kConnections) == std::vector<int>{0, kConnections, 0, 0});
}

TEST_CASE("reuseport_steering_program shapes") {
  SECTION("identity: the draw modulo the count is the slot") {
    const auto p = reuseport_steering_program({0, 1, 2});
    REQUIRE(p.size() == 3);
    CHECK(p[1].code == (BPF_ALU | BPF_MOD | BPF_K));
    CHECK(p[1].k == 3);
    CHECK(p[2].code == (BPF_RET | BPF_A));
    for (std::uint32_t r = 0; r < 9; ++r) CHECK(run(p, r) == r % 3);
    CHECK(kernel_accepts(p));
  }
  SECTION("one live slot is one return") {
    const auto p = reuseport_steering_program({2});
    REQUIRE(p.size() == 1);
    CHECK(run(p, 12345) == 2);
    CHECK(kernel_accepts(p));
  }
  SECTION("no live slot returns an index that falls back to the kernel's hash") {
    const auto p = reuseport_steering_program({});
    REQUIRE(p.size() == 1);
    CHECK(run(p, 0) >= 1024);
    CHECK(kernel_accepts(p));
  }
  SECTION("a chain maps every draw onto the live slots") {
    const std::vector<int> live{0, 2, 5};
    const auto p = reuseport_steering_program(live);
    for (std::uint32_t r = 0; r < 12; ++r) CHECK(run(p, r) == static_cast<std::uint32_t>(live[r % 3]));
    CHECK(kernel_accepts(p));
  }
  SECTION("1000 live slots fit in BPF_MAXINSNS and the kernel takes them") {
    std::vector<int> live;
    for (int i = 1; i <= 1000; ++i) live.push_back(i);  // not the identity: the longest shape
    const auto p = reuseport_steering_program(live);
    CHECK(p.size() <= BPF_MAXINSNS);
    for (std::uint32_t r = 0; r < 1000; ++r) REQUIRE(run(p, r) == r + 1);
    CHECK(run(p, 0xffffffffu) == static_cast<std::uint32_t>(live[0xffffffffu % 1000]));
    CHECK(kernel_accepts(p));
  }
}

TEST_CASE("balance = load listeners follow the balanced set - hash listeners the live set") {
  ListenConfig hashed = tcp4("hashed", free_port());
  hashed.balance = preforkd::ListenBalance::hash;
  auto set = ListenerSet::open({tcp4("loaded", free_port()), hashed}, 3);
  REQUIRE(set.ok());
  CHECK(set->balances_on_load());
  // Live {0, 2}; of those only slot 2 waits.
  REQUIRE(set->steer({0, 2}, {2}).ok());
  std::vector<int> loaded, hashed_fds;
  for (int slot = 0; slot < 3; ++slot) {
    loaded.push_back(set->fds_for_slot(slot).at(0));
    hashed_fds.push_back(set->fds_for_slot(slot).at(1));
  }
  {
    auto clients = connect_many(local_port(loaded[0]), kConnections);
    CHECK(accept_all(loaded, kConnections) == std::vector<int>{0, 0, kConnections});
  }
  {
    auto clients = connect_many(local_port(hashed_fds[0]), kConnections);
    const auto counts = accept_all(hashed_fds, kConnections);
    CHECK(counts[1] == 0);
    CHECK(counts[0] > 0);  // misses with probability 2^-20
    CHECK(counts[2] > 0);
  }
  // A new balanced set re-steers only the load listener.
  REQUIRE(set->steer({0, 2}, {0}).ok());
  {
    auto clients = connect_many(local_port(loaded[0]), kConnections);
    CHECK(accept_all(loaded, kConnections) == std::vector<int>{kConnections, 0, 0});
  }
  CHECK_FALSE(set->steer({0}, {3}).ok());
}

TEST_CASE("eBPF steering sends a new connection to the slot whose socket a thread waits on") {
  if (auto why = preforkd::os::reuseport_steering_unavailable()) {
    // CI runs as root on a kernel with BTF: there the program must load.
    if (::geteuid() == 0) FAIL("as root: " << *why);
    SKIP_OR_FAIL("eBPF steering needs root: " << *why);
  }
  // Five rounds with a fresh set each: the waiting slot moves, the other three have no
  // thread. Were waiting not seen, each round would hit it by chance 1 time in 4.
  for (int waiter : {2, 0, 3, 1, 2}) {
    INFO("waiting slot " << waiter);
    auto set = ListenerSet::open({tcp4("loaded", free_port())}, 4);
    REQUIRE(set.ok());
    set->use_load_steering(preforkd::os::LoadSteering::ebpf);
    REQUIRE(set->steer({0, 1, 2, 3}, {0, 1, 2, 3}).ok());
    CHECK(set->balanced_by(0) == "ebpf");
    CHECK_FALSE(set->balances_on_load());  // nothing for the sampler to do
    std::vector<int> fds;
    for (int slot = 0; slot < 4; ++slot) fds.push_back(set->fds_for_slot(slot).at(0));
    const int waiting_fd = fds[static_cast<std::size_t>(waiter)];
    // The master holds its sockets non-blocking; a synchronous worker's accept() blocks.
    REQUIRE(::fcntl(waiting_fd, F_SETFL, ::fcntl(waiting_fd, F_GETFL) & ~O_NONBLOCK) == 0);
    AcceptingThread accepting(waiting_fd);
    const bool blocked = accepting.wait_blocked();
    INFO("accept() returned " << accepting.accepted() << ", errno " << accepting.error() << "; syscall "
                              << accepting.last_seen());
    REQUIRE(blocked);
    auto clients = connect_many(local_port(fds[0]), 1);
    REQUIRE(clients.size() == 1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (accepting.accepted() < 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const bool reached = accepting.accepted() >= 0;
    CHECK(reached);
    const auto counts = set->steer_counts(0);
    REQUIRE(counts);
    CHECK(counts->to_waiting == 1);
    CHECK(counts->to_busy == 0);
    for (int slot = 0; slot < 4; ++slot)
      if (slot != waiter || reached) CHECK(set->accept_queue_depth(0, slot) == 0);
  }
}

TEST_CASE("a load listener whose eBPF program cannot load keeps steering to the live slots") {
  // Capabilities are per thread: this thread drops all of them, so bpf() is refused to it
  // as to an unprivileged master, and the set must fall back to classic BPF.
  std::string failure;
  std::string balanced_by;
  bool samples = false;
  std::vector<int> counts;
  std::thread unprivileged([&] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none[2]{};
    if (::syscall(SYS_capset, &header, none) != 0) {
      failure = "capset failed";
      return;
    }
    auto set = ListenerSet::open({tcp4("loaded", free_port())}, 3);
    if (!set) {
      failure = set.error();
      return;
    }
    set->use_load_steering(preforkd::os::LoadSteering::ebpf);
    // Classic BPF steers it: that succeeds, and the program's failure is kept for the caller.
    const preforkd::Status st = set->steer({0, 2}, {0, 2});
    failure = st ? set->ebpf_error(0) : "steer failed: " + st.error();
    balanced_by = set->balanced_by(0);
    samples = set->balances_on_load();
    std::vector<int> fds;
    for (int slot = 0; slot < 3; ++slot) fds.push_back(set->fds_for_slot(slot).at(0));
    auto clients = connect_many(local_port(fds[0]), kConnections);
    counts = accept_all(fds, kConnections);
  });
  unprivileged.join();
  INFO(failure);
  CHECK(failure.find("eBPF steering: cannot load the program: operation not permitted") != std::string::npos);
  CHECK(balanced_by == "sampler");
  CHECK(samples);
  REQUIRE(counts.size() == 3);
  CHECK(counts[1] == 0);  // slot 1 is not live: nothing for it
  CHECK(counts[0] + counts[2] == kConnections);
}

TEST_CASE("eBPF steering keeps balancing after the slot count shrinks and grows") {
  if (auto why = preforkd::os::reuseport_steering_unavailable()) {
    // CI runs as root on a kernel with BTF: there the program must load.
    if (::geteuid() == 0) FAIL("as root: " << *why);
    WARN("eBPF steering not tested here: " << *why);
    return;
  }
  auto set = ListenerSet::open({tcp4("loaded", free_port())}, 4);
  REQUIRE(set.ok());
  set->use_load_steering(preforkd::os::LoadSteering::ebpf);
  REQUIRE(set->steer({0, 1, 2, 3}, {0, 1, 2, 3}).ok());
  REQUIRE(set->balanced_by(0) == "ebpf");
  // Every connection placed by the program, among exactly the live slots.
  const auto placed_by_program = [&](int slots) {
    const auto before = set->steer_counts(0);
    REQUIRE(before);
    const auto counts = connect_and_count(*set, kConnections);
    const auto after = set->steer_counts(0);
    REQUIRE(after);
    INFO("ebpf_error: " << set->ebpf_error(0));
    CHECK(set->balanced_by(0) == "ebpf");
    CHECK(set->ebpf_error(0).empty());
    REQUIRE(counts.size() == static_cast<std::size_t>(slots));
    CHECK(std::accumulate(counts.begin(), counts.end(), 0) == kConnections);
    CHECK(after->to_waiting + after->to_busy - before->to_waiting - before->to_busy == kConnections);
  };
  placed_by_program(4);

  // Scale down: slot 3's socket closes and leaves the program's map by itself; removing
  // its index then finds it empty (EINVAL from the kernel), which is no failure.
  set->shrink(3);
  REQUIRE(set->steer({0, 1, 2}, {0, 1, 2}).ok());
  placed_by_program(3);

  // Scale up again: a new socket joins the group and the map at index 3.
  REQUIRE(set->grow(4).ok());
  REQUIRE(set->steer({0, 1, 2, 3}, {0, 1, 2, 3}).ok());
  placed_by_program(4);

  // A removed slot whose socket is still open elsewhere (a dup, as a reloaded set holds)
  // stays in the map until it is removed: that removal works too, and nothing goes to it.
  Fd held(::fcntl(set->fds_for_slot(3).at(0), F_DUPFD_CLOEXEC, 3));
  REQUIRE(held.valid());
  set->shrink(3);
  REQUIRE(set->steer({0, 1, 2}, {0, 1, 2}).ok());
  placed_by_program(3);
}
