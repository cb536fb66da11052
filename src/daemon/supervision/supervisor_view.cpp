// The supervisor's surface for its observers: the view of the slots they read
// (slot_view.hpp) and the one way their inputs come back (worker_input.hpp).

#include <preforkd/daemon/supervision/supervisor.hpp>

#include "worker_run.hpp"

#include <type_traits>

namespace preforkd::daemon {

namespace {

RunView view_of_run(const WorkerRun& run) {
  RunView v;
  v.slot = run.slot;
  v.pid = run.pid;
  v.last_pid = run.last_pid;
  v.state = run.life.state;
  if (run.gen) {
    v.generation = run.gen->number;
    v.ready = run.gen->worker.ready.kind;
  }
  v.started = run.started;
  v.started_wall = run.started_wall;
  v.notify_status = run.notify_status;
  v.stall_note = run.stall_note;
  if (run.cgroup) v.cgroup = run.cgroup->path();
  v.cpu = run.cpu;
  v.usage = run.usage;
  return v;
}

SlotView view_of_slot(const Slot& slot, int index) {
  SlotView v;
  v.slot = index;
  v.removing = slot.removing;
  v.parked = slot.parked;
  if (slot.current) v.current = view_of_run(*slot.current);
  if (slot.candidate) v.candidate = view_of_run(*slot.candidate);
  for (const auto& r : slot.retiring) v.retiring.push_back(view_of_run(*r));
  v.restarts = slot.restarts;
  v.crashes = slot.crashes;
  v.replacements = slot.replacements;
  v.replaced_for = slot.replaced_for;
  v.last_exit = slot.last_exit;
  return v;
}

}  // namespace

bool SlotView::has_process() const {
  bool any = (current && current->pid > 0) || (candidate && candidate->pid > 0);
  for (const RunView& r : retiring) any = any || r.pid > 0;
  return any;
}

LogFields log_fields(const RunView& run) {
  LogFields f;
  f.slot = run.slot;
  if (const pid_t pid = run.pid > 0 ? run.pid : run.last_pid; pid > 0) f.worker_pid = pid;
  f.generation = run.generation;
  return f;
}

std::vector<SlotView> Supervisor::view() const {
  std::vector<SlotView> out;
  out.reserve(slots_.size());
  for (std::size_t i = 0; i < slots_.size(); ++i) out.push_back(view_of_slot(slots_[i], static_cast<int>(i)));
  return out;
}

int Supervisor::slot_count() const { return static_cast<int>(slots_.size()); }

std::optional<SlotView> Supervisor::view_of(int slot) const {
  if (slot < 0 || slot >= static_cast<int>(slots_.size())) return std::nullopt;
  return view_of_slot(slots_[static_cast<std::size_t>(slot)], slot);
}

std::vector<std::optional<int>> Supervisor::first_exec_errnos() const {
  std::vector<std::optional<int>> out;
  for (const auto& slot : slots_) out.push_back(slot.first_exec_errno);
  return out;
}

std::vector<ino_t> Supervisor::socket_inodes(int slot, pid_t pid) const {
  if (slot < 0 || slot >= static_cast<int>(slots_.size()) || pid <= 0) return {};
  const Slot& s = slots_[static_cast<std::size_t>(slot)];
  for (const WorkerRun* run : {s.current.get(), s.candidate.get()})
    if (run != nullptr && run->pid == pid) return socket_inodes_of(*run);
  return {};
}

std::vector<ino_t> Supervisor::socket_inodes_of(const WorkerRun& run) const {
  return listeners_for(run).socket_inodes_for_slot(run.slot);
}

void Supervisor::submit(WorkerInput input) {
  std::visit(
      [this](auto&& in) {
        using In = std::decay_t<decltype(in)>;
        if constexpr (std::is_same_v<In, UsageSampled>) {
          if (in.slot < 0 || in.slot >= static_cast<int>(slots_.size())) return;
          if (WorkerRun* run = slots_[static_cast<std::size_t>(in.slot)].current.get()) run->usage = in.usage;
        } else if constexpr (std::is_same_v<In, Stalled>) {
          if (in.slot < 0 || in.slot >= static_cast<int>(slots_.size())) return;
          WorkerRun* run = slots_[static_cast<std::size_t>(in.slot)].current.get();
          if (run == nullptr || run->pid != in.pid || run->life.state != WorkerState::ready) return;
          run->stall_note = std::move(in.note);
          post(*run, Event::of(Event::Kind::stalled));
          run_queue();
        } else {
          static_assert(std::is_same_v<In, SeenAccepting>);
          WorkerRun* run = find_run(in.pid);
          if (run == nullptr) return;
          post(*run, Event::of(Event::Kind::seen_accepting));
          run_queue();
        }
      },
      std::move(input));
}

void Supervisor::subscribe(Changes kinds, std::function<void(Changes)> observer) {
  subscriptions_.push_back({kinds, std::move(observer)});
}

void Supervisor::publish() {
  SupervisorFacts facts{target_count_, gen_->number, stopping_, listeners_.get(), {}};
  for (int s = 0; s < listeners_->slot_count(); ++s) facts.slot_fds.push_back(listeners_->fds_for_slot(s));
  SlotsDigest now = digest(view(), facts);
  const Changes changed = changes_between(published_, now);
  published_ = std::move(now);
  if (changed.empty()) return;
  // The live set depends on nothing else: steering follows first, as the watches expect.
  update_steering();
  for (const Subscription& s : subscriptions_)
    if (changed.any_of(s.kinds)) s.observer(changed);
}

}  // namespace preforkd::daemon
