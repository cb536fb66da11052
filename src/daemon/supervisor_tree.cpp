// A worker is its whole tree: each worker process runs in a cgroup of its own where the
// master can make one (os/cgroup.hpp), and whatever it forked goes when it goes. Without
// a cgroup, its process group goes, and so do the descendants last seen from /proc (a
// setsid() leaves the group; once the worker exits they belong to the master, a subreaper,
// and could no longer be told from other orphans).

#include <preforkd/daemon/supervisor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace preforkd::daemon {

void Supervisor::prepare_cgroup(WorkerRun& run, os::SpawnSpec& spec) {
  run.cgroup.reset();
  if (!cgroups_) return;
  auto cgroup = cgroups_->make_worker(run.slot);
  if (!cgroup) {
    // The worker still starts, in the master's cgroup: its tree is then found from /proc.
    spdlog::warn("worker {}: cannot make its cgroup: {}; starting it without one", run.slot, cgroup.error());
    return;
  }
  run.cgroup = std::move(*cgroup);
  spec.cgroup_procs_fd = run.cgroup->procs_fd();
}

void Supervisor::adopt_cgroup(WorkerRun& run) {
  run.cgroup.reset();
  if (!cgroups_) return;
  auto cgroup = cgroups_->adopt_worker(run.pid);
  if (!cgroup) {
    spdlog::warn("worker {} (pid {}): {}; its tree is found from /proc instead", run.slot, run.pid, cgroup.error());
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
      spdlog::warn("{}: cannot kill the processes left in its cgroup: {}", who(run), killed.error());
    if (!run.cgroup->remove()) dead_cgroups_.push_back(std::move(run.cgroup));
    run.cgroup.reset();
    return;
  }
  const int killed = os::kill_processes(run.known_tree);
  if (killed > 0) spdlog::info("{}: killed {} of its descendants that were still running", who(run), killed);
  run.known_tree.clear();
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
      spdlog::warn("killed {} processes left in {} by preforkd (pid {}), which is gone{}", s.processes, s.path,
                   s.master, s.removed ? "" : "; the cgroup is not empty yet, ignoring");
    } else {
      spdlog::info("removed {}, an empty cgroup of preforkd (pid {}), which is gone", s.path, s.master);
    }
  }
  spdlog::info("each worker runs in a cgroup of its own under {}", (*tree)->path());
  return std::move(*tree);
}

}  // namespace preforkd::daemon
