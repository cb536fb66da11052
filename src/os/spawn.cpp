// spawn: everything a worker's start needs, laid out before the child exists (argv, envp
// with room for LISTEN_PID, the output and report pipes, the CPU mask), then the start
// (spawn_child.cpp) and the wait until the child has exec'd or failed to.

#include <preforkd/os/spawn.hpp>

#include "spawn_child.hpp"

#include <preforkd/core/limits.hpp>
#include <preforkd/os/sys_error.hpp>

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

namespace preforkd::os {

using namespace spawn_child;

namespace {

// The errno of the last failed call in the parent's part of spawn(), to tell an fd
// shortage from other failures.
SpawnError spawn_error(const Error& e, int err) { return SpawnError{e.message, err == EMFILE || err == ENFILE}; }

Result<std::pair<Fd, Fd>> make_pipe(const std::string& program, int read_flags, int& err) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    err = errno;
    return errno_error("create a pipe for", program, err);
  }
  Fd r(fds[0]), w(fds[1]);
  if (read_flags != 0 && ::fcntl(r.get(), F_SETFL, ::fcntl(r.get(), F_GETFL) | read_flags) < 0) {
    err = errno;
    return errno_error("set the flags of a pipe for", program, err);
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
  // What the errors below name.
  const std::string& program = spec.executable;
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
    return spawn_error(errno_error("open", "/dev/null", err), err);
  }
  plan.devnull = devnull.get();

  SpawnedProcess out;
  Fd out_w, err_w;
  if (spec.output == OutputMode::capture) {
    auto o = make_pipe(program, O_NONBLOCK, err);
    if (!o) return spawn_error(Error{o.error()}, err);
    auto e = make_pipe(program, O_NONBLOCK, err);
    if (!e) return spawn_error(Error{e.error()}, err);
    out.stdout_pipe = std::move(o->first);
    out_w = std::move(o->second);
    out.stderr_pipe = std::move(e->first);
    err_w = std::move(e->second);
    plan.out_w = out_w.get();
    plan.err_w = err_w.get();
  }
  // Blocking: read below until the child has exec'd (EOF, the write end is CLOEXEC) or failed.
  auto report = make_pipe(program, 0, err);
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
  if (pid < 0) {
    const char* verb = share_memory_until_exec ? "clone a process for" : "fork a process for";
    return spawn_error(errno_error(verb, program, fork_errno), fork_errno);
  }
  // Also from this side, so the group exists before the master could signal it.
  ::setpgid(pid, pid);
  out.pid = pid;
  // With clone(CLONE_VFORK) the child has exec'd or failed by now; after a fork this waits
  // for it, as posix_spawn does, so that the caller knows whether the program runs.
  report_w.reset();
  out.exec_errno = read_exec_report(report_r);
  return out;
}

}  // namespace preforkd::os
