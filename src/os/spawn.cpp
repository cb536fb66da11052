#include <preforkd/os/spawn.hpp>

#include <preforkd/core/limits.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace preforkd::os {

namespace {

constexpr char listen_pid_prefix[] = "LISTEN_PID=";
constexpr char watchdog_pid_prefix[] = "WATCHDOG_PID=";
constexpr std::size_t pid_digits = 20;

Error sys_error(const char* call, int err = errno) { return Error{std::string(call) + ": " + std::strerror(err)}; }

// The errno of the last failed call in the parent's part of spawn(), to tell an fd
// shortage from other failures.
SpawnError spawn_error(const Error& e, int err) { return SpawnError{e.message, err == EMFILE || err == ENFILE}; }

// Everything the child touches, laid out before fork so the child never allocates.
struct ChildPlan {
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string listen_pid;  // "LISTEN_PID=" followed by room for the digits
  std::string watchdog_pid;  // the same for WATCHDOG_PID, when wanted
  const SpawnSpec* spec = nullptr;
  int devnull = -1;
  int out_w = -1;
  int err_w = -1;
  int report_w = -1;
  bool pin = false;    // apply cpu_mask
  cpu_set_t cpu_mask;  // built before fork: CPU_SET is not something to do in the child
  bool join_cgroup = false;  // not started in spec.cgroup_fd: write cgroup.procs before exec
};

// async-signal-safe: writes the decimal pid into buf (NUL-terminated).
void write_decimal(char* buf, long value) {
  char tmp[pid_digits];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0 && n < static_cast<int>(pid_digits));
  for (int i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  buf[n] = '\0';
}

[[noreturn]] void child_fail(int report_fd, int err) {
  // The master reads the errno from the report pipe once the child has exited.
  [[maybe_unused]] ssize_t w = ::write(report_fd, &err, sizeof err);
  _exit(err == ENOENT ? 127 : 126);
}

// Runs in the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void run_child(ChildPlan& plan) {
  const SpawnSpec& spec = *plan.spec;

  // Default dispositions first, with every signal still blocked, then a clean mask. The
  // raw system call, because glibc's sigaction refuses signals 32 and 33, which it keeps
  // for itself, and which a parent (GNU make does) may have left ignored.
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
  } dfl{SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig < NSIG; ++sig) ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);

  // Its own process group, so a stop can reach the worker's own children too.
  ::setpgid(0, 0);

  // Move every fd the child keeps above the target range, then into place; dup2 clears
  // FD_CLOEXEC on the target, which is what hands the sockets over.
  const int n = static_cast<int>(spec.listen_fds.size());
  const int high = 3 + n;
  int report = ::fcntl(plan.report_w, F_DUPFD_CLOEXEC, high);
  if (report < 0) _exit(126);
  // Into the worker's own cgroup first (where clone3 could not start it there), so that
  // everything it forks is counted and killed with it; before the privilege drop, since
  // moving needs write access to cgroup.procs.
  if (plan.join_cgroup) {
    const int procs = ::openat(spec.cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (procs < 0 || ::write(procs, "0", 1) < 0) child_fail(report, errno);
    ::close(procs);
  }
  int sources[3 + max_listen_fds];
  sources[0] = ::fcntl(plan.devnull, F_DUPFD_CLOEXEC, high);
  sources[1] = plan.out_w >= 0 ? ::fcntl(plan.out_w, F_DUPFD_CLOEXEC, high) : -1;
  sources[2] = plan.err_w >= 0 ? ::fcntl(plan.err_w, F_DUPFD_CLOEXEC, high) : -1;
  for (int i = 0; i < n; ++i) sources[3 + i] = ::fcntl(spec.listen_fds[static_cast<std::size_t>(i)], F_DUPFD_CLOEXEC, high);
  for (int target = 0; target < 3 + n; ++target) {
    if (sources[target] < 0) {
      if (target == 1 || target == 2) continue;  // inherited output
      child_fail(report, errno);
    }
    if (::dup2(sources[target], target) < 0) child_fail(report, errno);
  }
  // Nothing else leaks into the worker, even fds the master inherited without CLOEXEC.
  ::syscall(SYS_close_range, static_cast<unsigned>(high), ~0U, CLOSE_RANGE_CLOEXEC);

  // The raw call: glibc's wrapper is not on the async-signal-safe list.
  if (plan.pin && ::syscall(SYS_sched_setaffinity, 0, sizeof plan.cpu_mask, &plan.cpu_mask) < 0)
    child_fail(report, errno);

  if (spec.credentials) {
    const Credentials& c = *spec.credentials;
    if (::setgroups(c.groups.size(), c.groups.data()) < 0) child_fail(report, errno);
    if (::setgid(c.gid) < 0) child_fail(report, errno);
    if (::setuid(c.uid) < 0) child_fail(report, errno);
  }
  // After setuid, which clears the parent-death signal.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(report, errno);
  if (::getppid() != spec.master_pid) _exit(126);  // the master died before prctl

  if (!spec.directory.empty() && ::chdir(spec.directory.c_str()) < 0) child_fail(report, errno);

  const long self = static_cast<long>(::getpid());
  write_decimal(plan.listen_pid.data() + sizeof(listen_pid_prefix) - 1, self);
  if (spec.with_watchdog_pid) write_decimal(plan.watchdog_pid.data() + sizeof(watchdog_pid_prefix) - 1, self);
  ::execve(spec.executable.c_str(), plan.argv.data(), plan.envp.data());
  child_fail(report, errno);
}

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer cannot follow a child that runs on the parent's memory: forks there.
constexpr bool share_memory_until_exec = false;
#else
constexpr bool share_memory_until_exec = true;
#endif

int child_entry(void* plan) { run_child(*static_cast<ChildPlan*>(plan)); }

// Set by check_single_threaded() when the invariant below does not hold.
bool fork_only = false;

// Cleared, with the reason, when the kernel cannot start a child in a cgroup.
bool clone_into_cgroup = true;

#if defined(__x86_64__)
#define PREFORKD_STRINGIFY2(x) #x
#define PREFORKD_STRINGIFY(x) PREFORKD_STRINGIFY2(x)
// clone3 for a child on a stack of its own (CLONE_VM): glibc 2.36 has no clone3 wrapper,
// and the child cannot return through syscall(), whose return address is on the parent's
// stack. So the child calls fn(arg) and exits from here, as glibc's clone() does.
//   long clone3_on_stack(clone_args* args, size_t size, int (*fn)(void*), void* arg)
// Parent: the child's pid or -errno. Only rax, rcx, r11 (the syscall's) and r8, r9 change.
extern "C" long preforkd_clone3_on_stack(clone_args* args, std::size_t size, int (*fn)(void*), void* arg);
asm(R"(
	.text
	.p2align 4
	.globl preforkd_clone3_on_stack
	.hidden preforkd_clone3_on_stack
	.type preforkd_clone3_on_stack, @function
preforkd_clone3_on_stack:
	.cfi_startproc
	movq %rdx, %r8
	movq %rcx, %r9
	movl $)" PREFORKD_STRINGIFY(SYS_clone3) R"(, %eax
	syscall
	testq %rax, %rax
	jz 1f
	ret
1:
	.cfi_undefined %rip
	xorl %ebp, %ebp
	movq %r9, %rdi
	call *%r8
	movl %eax, %edi
	movl $)" PREFORKD_STRINGIFY(SYS_exit) R"(, %eax
	syscall
	hlt
	.cfi_endproc
	.size preforkd_clone3_on_stack, .-preforkd_clone3_on_stack
)");
constexpr bool have_clone3_on_stack = true;
#else
constexpr bool have_clone3_on_stack = false;
long preforkd_clone3_on_stack(clone_args*, std::size_t, int (*)(void*), void*) { return -ENOSYS; }
#endif

// clone3 errors that say the kernel cannot start a child in a cgroup at all: no clone3
// (before Linux 5.3, or refused by a seccomp filter: ENOSYS, EPERM), or no
// CLONE_INTO_CGROUP (before 5.7: E2BIG for its larger clone_args, EINVAL for the flag).
bool cannot_clone_into_cgroup(int err) { return err == ENOSYS || err == EPERM || err == E2BIG || err == EINVAL; }

// Starts the child in the cgroup `plan.spec->cgroup_fd`: with CLONE_VM | CLONE_VFORK on a
// stack of its own where the architecture has the entry above (x86-64), else as a fork of
// a master with one thread (a raw clone3 skips glibc's fork handlers, which only threads
// need). -1 with errno as clone3 set it.
pid_t clone_into(ChildPlan& plan, void* stack, std::size_t stack_size) {
  clone_args args{};
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<std::uint64_t>(plan.spec->cgroup_fd);
  if (stack != nullptr && have_clone3_on_stack) {
    args.flags |= CLONE_VM | CLONE_VFORK;
    args.stack = reinterpret_cast<std::uintptr_t>(stack);
    args.stack_size = stack_size;
    const long r = preforkd_clone3_on_stack(&args, sizeof args, child_entry, &plan);
    if (r < 0) {
      errno = static_cast<int>(-r);
      return -1;
    }
    return static_cast<pid_t>(r);
  }
  // A fork: the child has its own copy of this stack and returns here.
  const long r = ::syscall(SYS_clone3, &args, sizeof args);
  if (r == 0) run_child(plan);
  return static_cast<pid_t>(r);
}

// Starts the child, as posix_spawn does: clone(CLONE_VM | CLONE_VFORK) copies no page
// tables (a plain fork of the master costs about a millisecond here), and the master
// sleeps only until the child has called execve or _exit. The child touches nothing but
// its own stack and the plan, and makes only async-signal-safe calls; without
// CLONE_SIGHAND it has its own copy of the signal dispositions to reset.
//
// The invariant that makes the child's set*id calls safe here: the master has exactly
// one thread. glibc's setuid/setgid/setgroups in a CLONE_VM child would otherwise run its
// "set IDs in every thread" protocol (SIGSETXID) against the parent's threads, which
// share its memory, and could deadlock or change the parent's credentials; a vfork'd
// child of a one-thread process has no other thread to signal. check_single_threaded()
// verifies this at start-up, and spawn falls back to fork when it does not hold.
//
// A child with a cgroup starts in it (clone_into); when the kernel refuses that for want of
// clone3 or CLONE_INTO_CGROUP (ENOSYS, E2BIG, EINVAL; EPERM from a seccomp filter), every
// child from then on joins by writing cgroup.procs, and `fallback` says why, once. So does
// the child of a master with threads: only glibc's fork() resets, in the child, the locks
// and the thread list that its setuid() would walk.
pid_t start_child(ChildPlan& plan, std::string& fallback) {
  const bool shared = share_memory_until_exec && !fork_only;
  const bool cgroup = plan.spec->cgroup_fd >= 0;
  plan.join_cgroup = cgroup && !(clone_into_cgroup && !fork_only);
  constexpr std::size_t stack_size = 256 * 1024;
  void* stack = nullptr;
  if (shared) {
    stack = ::mmap(nullptr, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
  }
  pid_t pid = -1;
  if (cgroup && !plan.join_cgroup) {
    pid = clone_into(plan, stack, stack_size);
    if (pid < 0 && cannot_clone_into_cgroup(errno)) {
      clone_into_cgroup = false;
      fallback = std::string("clone3(CLONE_INTO_CGROUP): ") + std::strerror(errno);
      plan.join_cgroup = true;
    }
  }
  if (!cgroup || (pid < 0 && plan.join_cgroup)) {
    if (shared) {
      pid = ::clone(child_entry, static_cast<char*>(stack) + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
    } else {
      pid = ::fork();
      if (pid == 0) run_child(plan);
    }
  }
  if (stack != nullptr) {
    const int err = errno;
    ::munmap(stack, stack_size);
    errno = err;
  }
  return pid;
}

Result<std::pair<Fd, Fd>> make_pipe(int read_flags, int& err) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    err = errno;
    return sys_error("pipe2", err);
  }
  Fd r(fds[0]), w(fds[1]);
  if (read_flags != 0 && ::fcntl(r.get(), F_SETFL, ::fcntl(r.get(), F_GETFL) | read_flags) < 0) {
    err = errno;
    return sys_error("fcntl", err);
  }
  return std::make_pair(std::move(r), std::move(w));
}

// The child's errno from the report pipe, or 0 at EOF: its exec closed the write end.
int read_exec_report(const Fd& report) {
  int err = 0;
  ssize_t n = 0;
  do {
    n = ::read(report.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof err) ? err : 0;
}

}  // namespace

Result<SpawnedProcess, SpawnError> spawn(const SpawnSpec& spec) {
  if (spec.listen_fds.size() > max_listen_fds) return SpawnError{"too many listening sockets", false};
  int err = 0;
  ChildPlan plan;
  plan.spec = &spec;
  plan.listen_pid = std::string(listen_pid_prefix) + std::string(pid_digits, '0');
  for (const auto& a : spec.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  for (const auto& e : spec.env) plan.envp.push_back(const_cast<char*>(e.c_str()));
  plan.envp.push_back(plan.listen_pid.data());
  if (spec.with_watchdog_pid) {
    plan.watchdog_pid = std::string(watchdog_pid_prefix) + std::string(pid_digits, '0');
    plan.envp.push_back(plan.watchdog_pid.data());
  }
  plan.envp.push_back(nullptr);
  CPU_ZERO(&plan.cpu_mask);
  if (spec.cpu >= 0) {
    if (spec.cpu >= CPU_SETSIZE) return SpawnError{"cpu_affinity: CPU " + std::to_string(spec.cpu) + " is out of range", false};
    CPU_SET(spec.cpu, &plan.cpu_mask);
    plan.pin = true;
  }

  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.valid()) {
    err = errno;
    return spawn_error(sys_error("open /dev/null", err), err);
  }
  plan.devnull = devnull.get();

  SpawnedProcess out;
  Fd out_w, err_w;
  if (spec.output == OutputMode::capture) {
    auto o = make_pipe(O_NONBLOCK, err);
    if (!o) return spawn_error(Error{o.error()}, err);
    auto e = make_pipe(O_NONBLOCK, err);
    if (!e) return spawn_error(Error{e.error()}, err);
    out.stdout_pipe = std::move(o->first);
    out_w = std::move(o->second);
    out.stderr_pipe = std::move(e->first);
    err_w = std::move(e->second);
    plan.out_w = out_w.get();
    plan.err_w = err_w.get();
  }
  // Blocking: read below until the child has exec'd (EOF, the write end is CLOEXEC) or failed.
  auto report = make_pipe(0, err);
  if (!report) return spawn_error(Error{report.error()}, err);
  Fd report_r = std::move(report->first);
  Fd report_w = std::move(report->second);
  plan.report_w = report_w.get();

  // Block every signal across the start so that no handler of the master runs in the
  // child before it has reset the dispositions.
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  const pid_t pid = start_child(plan, out.cgroup_fallback);
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) return spawn_error(sys_error(share_memory_until_exec ? "clone" : "fork", fork_errno), fork_errno);
  // Also from this side, so the group exists before the master could signal it.
  ::setpgid(pid, pid);
  out.pid = pid;
  // With clone(CLONE_VFORK) the child has exec'd or failed by now; after a fork this waits
  // for it, as posix_spawn does, so that the caller knows whether the program runs.
  report_w.reset();
  out.exec_errno = read_exec_report(report_r);
  return out;
}

Status check_single_threaded() {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) {
    fork_only = true;
    return Error{std::string("cannot count the master's threads: /proc/self/task: ") + std::strerror(errno)};
  }
  int threads = 0;
  while (const dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.') ++threads;
  ::closedir(dir);
  if (threads != 1) {
    fork_only = true;
    return Error{"the master has " + std::to_string(threads) + " threads, not 1"};
  }
  fork_only = false;
  return Ok{};
}

std::string resolve_executable(const std::string& name, const std::string& path_env) {
  if (name.empty() || name.find('/') != std::string::npos) return name;
  std::size_t begin = 0;
  while (begin <= path_env.size()) {
    std::size_t end = path_env.find(':', begin);
    if (end == std::string::npos) end = path_env.size();
    // An empty entry is the current directory. Appended, not assigned: GCC 12 at -O3
    // reports a false -Werror=restrict for `dir = "."`.
    std::string candidate = end == begin ? std::string(".") : path_env.substr(begin, end - begin);
    candidate.append(1, '/').append(name);
    if (::access(candidate.c_str(), X_OK) == 0) {
      struct stat st {};
      if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return candidate;
    }
    begin = end + 1;
  }
  return name;
}

namespace {

std::optional<unsigned long> parse_id(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 10) return std::nullopt;
  return std::stoul(s);
}

}  // namespace

Result<std::optional<Credentials>> resolve_credentials(const std::string& user, const std::string& group) {
  if (user.empty() && group.empty()) return std::optional<Credentials>{};
  Credentials c;
  c.uid = ::getuid();
  c.gid = ::getgid();
  std::string user_name;
  if (!user.empty()) {
    errno = 0;
    const passwd* pw = parse_id(user) ? ::getpwuid(static_cast<uid_t>(*parse_id(user))) : ::getpwnam(user.c_str());
    if (pw == nullptr) {
      if (!parse_id(user)) return Error{"unknown user '" + user + "'"};
      c.uid = static_cast<uid_t>(*parse_id(user));
    } else {
      c.uid = pw->pw_uid;
      c.gid = pw->pw_gid;
      user_name = pw->pw_name;
    }
  }
  if (!group.empty()) {
    const struct group* gr = parse_id(group) ? ::getgrgid(static_cast<gid_t>(*parse_id(group))) : ::getgrnam(group.c_str());
    if (gr == nullptr) {
      if (!parse_id(group)) return Error{"unknown group '" + group + "'"};
      c.gid = static_cast<gid_t>(*parse_id(group));
    } else {
      c.gid = gr->gr_gid;
    }
  }
  if (!user_name.empty()) {
    int count = 64;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    if (::getgrouplist(user_name.c_str(), c.gid, groups.data(), &count) < 0) {
      groups.resize(static_cast<std::size_t>(count));
      ::getgrouplist(user_name.c_str(), c.gid, groups.data(), &count);
    }
    groups.resize(static_cast<std::size_t>(count));
    c.groups = std::move(groups);
  } else {
    c.groups = {c.gid};
  }
  return std::optional<Credentials>{std::move(c)};
}

}  // namespace preforkd::os
