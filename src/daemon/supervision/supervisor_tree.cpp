// A worker is its whole tree: each worker process runs in a cgroup of its own where the
// master can make one (os/cgroup.hpp), and whatever it forked goes when it goes. Without
// a cgroup, its process group goes, and so do the descendants last seen from /proc (a
// setsid() leaves the group; once the worker exits they belong to the master, a subreaper,
// and could no longer be told from other orphans).
//
// None of the cgroup work sits between a crash and the replacement's start: the
// replacement starts in its slot's spare cgroup, made after the previous start, and the
// dead worker's cgroup is killed and removed once the replacement has started (a cgroup of
// its own, so the kill never reaches the replacement).

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"
#include <preforkd/core/message_text.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace preforkd::daemon {

os::Fd Supervisor::prepare_cgroup(WorkerRun& run) {
  run.cgroup.reset();
  if (!cgroups_) return {};
  auto cgroup = cgroups_->take_worker(run.slot);
  Result<os::Fd> dir = cgroup ? (*cgroup)->open_directory() : Result<os::Fd>(Error{cgroup.error()});
  if (!dir) {
    // The worker still starts, in the master's cgroup: its tree is then found from /proc.
    log_with(log_fields(run), spdlog::level::warn, "worker {}: cannot make its cgroup: {}; starting it without one",
             run.slot, dir.error());
    if (cgroup) (*cgroup)->remove();
    return {};
  }
  run.cgroup = std::move(*cgroup);
  return std::move(*dir);
}

void Supervisor::make_spare_cgroups() {
  std::vector<int> slots;
  slots.swap(spare_wanted_);
  if (!cgroups_ || stopping_) return;
  for (int slot : slots) {
    if (slot >= static_cast<int>(slots_.size()) || slots_[static_cast<std::size_t>(slot)].removing) continue;
    // The next start makes it then, and says why if it fails again.
    if (Status made = cgroups_->make_spare(slot); !made)
      log_with({.slot = slot}, spdlog::level::debug, "worker {}: cannot make the cgroup of its next process ahead: {}",
               slot, made.error());
  }
}

void Supervisor::adopt_cgroup(WorkerRun& run) {
  run.cgroup.reset();
  if (!cgroups_) return;
  auto cgroup = cgroups_->adopt_worker(run.pid);
  if (!cgroup) {
    log_with(log_fields(run), spdlog::level::warn, "worker {} (pid {}): {}; its tree is found from /proc instead",
             run.slot, run.pid, cgroup.error());
    return;
  }
  run.cgroup = std::move(*cgroup);
}

void Supervisor::remember_tree(WorkerRun& run) {
  if (run.cgroup || run.pid <= 0) return;
  for (const os::ProcessId& p : os::snapshot_descendants(run.pid))
    if (std::find(run.known_tree.begin(), run.known_tree.end(), p) == run.known_tree.end()) run.known_tree.push_back(p);
}

void Supervisor::kill_tree(WorkerRun& run) {
  if (run.cgroup) {
    if (Status killed = run.cgroup->kill(); !killed)
      log_with(log_fields(run), spdlog::level::warn, "{}: cannot kill the processes left in its cgroup: {}", who(run),
               killed.error());
    if (!run.cgroup->remove()) dead_cgroups_.push_back(std::move(run.cgroup));
    run.cgroup.reset();
    return;
  }
  const int killed = os::kill_processes(run.known_tree);
  if (killed > 0)
    log_with(log_fields(run), spdlog::level::info, "{}: killed {} of its descendants that were still running", who(run),
             killed);
  run.known_tree.clear();
}

void Supervisor::kill_tree_after_queue(WorkerRun& run) {
  if (!run.cgroup) return kill_tree(run);
  exited_cgroups_.push_back(std::move(run.cgroup));
}

void Supervisor::kill_exited_cgroups() {
  for (auto& cgroup : exited_cgroups_) {
    if (Status killed = cgroup->kill(); !killed)
      spdlog::warn("'{}': cannot kill the processes left in it: {}", cgroup->path(), killed.error());
    if (!cgroup->remove()) dead_cgroups_.push_back(std::move(cgroup));
  }
  exited_cgroups_.clear();
}

void Supervisor::remove_dead_cgroups() {
  std::erase_if(dead_cgroups_, [](const std::unique_ptr<os::WorkerCgroup>& c) { return c->remove(); });
}

os::TreeUsage Supervisor::sample_tree(int slot) {
  if (slot < 0 || slot >= static_cast<int>(slots_.size())) return {};
  WorkerRun* run = slots_[static_cast<std::size_t>(slot)].current.get();
  if (run == nullptr || run->pid <= 0) return {};
  if (run->cgroup) return os::tree_memory(*run->cgroup);
  // Without a cgroup the descendants seen now are also the ones a stop will kill.
  run->known_tree.clear();
  remember_tree(*run);
  return os::tree_memory(run->pid);
}

Result<std::unique_ptr<os::CgroupTree>> open_worker_cgroups(WorkerCgroups mode, os::OwnCgroup own) {
  if (mode == WorkerCgroups::off) {
    spdlog::info("worker cgroups are off (preforkd.worker_cgroups): a worker is its process group");
    return std::unique_ptr<os::CgroupTree>{};
  }
  auto tree = os::CgroupTree::create(own);
  if (!tree) {
    if (mode == WorkerCgroups::on) return Error{"preforkd.worker_cgroups = \"on\": " + tree.error()};
    spdlog::info("no worker cgroups ({}): a worker is its process group and its descendants", tree.error());
    return std::unique_ptr<os::CgroupTree>{};
  }
  for (const os::StaleCgroup& s : (*tree)->kill_stale()) {
    if (s.processes > 0) {
      spdlog::warn("killed {} left in '{}' by preforkd (pid {}), which is gone{}", plural(s.processes, "process", "processes"), s.path,
                   s.master, s.removed ? "" : "; the cgroup is not empty yet, ignoring");
    } else {
      spdlog::info("removed '{}', an empty cgroup of preforkd (pid {}), which is gone", s.path, s.master);
    }
  }
  spdlog::info("each worker runs in a cgroup of its own under '{}'", (*tree)->path());
  return std::move(*tree);
}

}  // namespace preforkd::daemon
