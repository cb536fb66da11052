// The child's side of spawn: starting it (clone3 into its cgroup, clone(CLONE_VM) or fork)
// and what it does between the start and exec, with async-signal-safe calls only.

#include "spawn_child.hpp"

#include <preforkd/core/limits.hpp>
#include <preforkd/os/signal_disposition.hpp>
#include <preforkd/os/sys_error.hpp>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace preforkd::os {
namespace spawn_child {
namespace {

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
  for (int sig = 1; sig < NSIG; ++sig) set_kernel_disposition(sig, SIG_DFL);
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

}  // namespace

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
      fallback = failed_to("call", "clone3(CLONE_INTO_CGROUP)", errno_text(errno));
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

}  // namespace spawn_child

Status check_single_threaded() {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) {
    spawn_child::fork_only = true;
    return errno_error("count the master's threads in", "/proc/self/task");
  }
  int threads = 0;
  while (const dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.') ++threads;
  ::closedir(dir);
  if (threads != 1) {
    spawn_child::fork_only = true;
    return Error{"the master has " + std::to_string(threads) + " threads, not 1"};
  }
  spawn_child::fork_only = false;
  return Ok{};
}

}  // namespace preforkd::os
