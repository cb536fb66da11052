#include <preforkd/core/worker_lifecycle.hpp>

#include <algorithm>

namespace preforkd {

namespace {

using A = Action::Kind;
using E = Event::Kind;
using S = WorkerState;

Action act(A kind, Duration delay = {}) { return Action{kind, delay}; }

Action replaced(ReplaceReason why) {
  Action a = act(A::report_replaced);
  a.reason = why;
  return a;
}

Transition stay(const Lifecycle& l) { return {l, {}}; }

// How a run gets (back) to starting: its first process, or a replacement for one that is gone.
enum class Start { first, replacement };

Transition enter_starting(Lifecycle l, Start how) {
  l.state = S::starting;
  l.stop_is_failure = false;
  if (how == Start::replacement) return {l, {act(A::report_restart), act(A::disarm_timer), act(A::spawn)}};
  return {l, {act(A::disarm_timer), act(A::spawn)}};
}

// What happens after a failed run: start again at once, back off, or give up. A trial
// run is never restarted: it failed, and the rolling plan takes it from there.
Transition after_failure(Lifecycle l, const RestartDecision& next) {
  if (l.trial) {
    l.state = S::failed;
    return {l, {act(A::disarm_timer)}};
  }
  l.failures = next.failures;
  if (next.delay == Duration::zero()) return enter_starting(l, Start::replacement);
  l.state = S::backoff;
  return {l, {act(A::report_backoff, next.delay), act(A::arm_timer, next.delay)}};
}

// `first` goes before the transition's own actions.
Transition prefixed(std::vector<Action> first, Transition t) {
  t.actions.insert(t.actions.begin(), first.begin(), first.end());
  return t;
}

Transition enter_stopping(Lifecycle l, const LifecyclePolicy& p, StopIntent intent, bool failure,
                          std::vector<Action> first = {}, ReplaceReason reason = ReplaceReason::restart) {
  l.state = S::stopping;
  // A trial run that fails is stopped for good; it is never replaced.
  l.stop_intent = l.trial ? StopIntent::remove : intent;
  l.replace_reason = reason;
  l.stop_is_failure = failure;
  first.push_back(act(A::send_stop_signal));
  first.push_back(act(A::arm_timer, p.stop_timeout));
  return {l, std::move(first)};
}

Transition enter_ready(Lifecycle l, std::vector<Action> actions = {}) {
  l.state = S::ready;
  l.trial = false;  // ready: from here on it is an ordinary run
  return {l, std::move(actions)};
}

Transition on_spawn_failed(const Lifecycle& l, const Event& e, const LifecyclePolicy& p) {
  if (l.state != S::starting) return stay(l);
  if (e.spawn_failure == SpawnFailure::fd_shortage && !l.trial) {
    // The master ran short of file descriptors: not the worker's fault, so it does not
    // count as a crash; a fixed short delay, as the shortage may last.
    // Reported once; the retries that follow are quiet until a spawn works.
    Lifecycle n = l;
    n.state = S::backoff;
    const Duration delay = p.restart.backoff_initial;
    if (l.short_of_fds) return {n, {act(A::arm_timer, delay)}};
    n.short_of_fds = true;
    return {n, {act(A::report_spawn_retry, delay), act(A::arm_timer, delay)}};
  }
  Lifecycle n = l;
  n.short_of_fds = false;
  n.exec_failed = false;
  // No process ran: as one that was never ready.
  return prefixed({act(A::report_spawn_failed)},
                  after_failure(n, after_crash(p.restart, l.failures, false, Duration::zero(), e.jitter)));
}

Transition on_spawned(const Lifecycle& current, const Event& e, const LifecyclePolicy& p) {
  if (current.state != S::starting) return stay(current);
  Lifecycle l = current;
  l.short_of_fds = false;
  // It never ran the program: not ready, whatever the ready policy; its exit follows.
  if (e.exec_errno != 0) return {l, {}};
  l.exec_failed = false;
  switch (p.ready.kind) {
    case ReadyKind::immediate:
      return enter_ready(l);
    case ReadyKind::alive:
      return {l, {act(A::arm_timer, p.ready.alive_for)}};
    case ReadyKind::notify:
    case ReadyKind::accepting:
      return {l, {act(A::arm_timer, p.ready_timeout)}};
  }
  return stay(l);
}

Transition on_timer(const Lifecycle& l, const LifecyclePolicy& p) {
  switch (l.state) {
    case S::starting:
      if (p.ready.kind == ReadyKind::alive) return enter_ready(l);
      // notify: READY=1 never came; accepting: it was never seen waiting on its socket.
      return enter_stopping(l, p, StopIntent::replace, true, {act(A::report_ready_timeout)});
    case S::backoff:
      // A quiet retry after an fd shortage is no replacement of a crashed process; after
      // an exec failure, its report already said this try would come.
      return enter_starting(l, l.short_of_fds || l.exec_failed ? Start::first : Start::replacement);
    case S::stopping:
      return {l, {act(A::report_stop_timeout), act(A::send_kill)}};
    case S::stopped:
    case S::ready:
    case S::failed:
      return stay(l);
  }
  return stay(l);
}

// A process whose exec failed: one report of the attempt, which says what follows, in
// place of the backoff and restart reports (after the crash is counted).
Transition as_exec_failure(Transition t) {
  t.next.exec_failed = true;
  bool merged = false;
  for (auto it = t.actions.begin(); it != t.actions.end();) {
    if (it->kind != A::report_backoff && it->kind != A::report_restart) {
      ++it;
      continue;
    }
    if (merged) {
      it = t.actions.erase(it);
      continue;
    }
    *it = act(A::report_exec_failed, it->kind == A::report_backoff ? it->delay : Duration::zero());
    merged = true;
    ++it;
  }
  if (!merged) {
    auto at =
        std::find_if(t.actions.begin(), t.actions.end(), [](const Action& a) { return a.kind == A::report_crash; });
    t.actions.insert(at == t.actions.end() ? t.actions.begin() : at + 1, act(A::report_exec_failed));
  }
  return t;
}

Transition on_exited(const Lifecycle& l, const Event& e, const LifecyclePolicy& p);

Transition on_exited_after_exec(const Lifecycle& l, const Event& e, const LifecyclePolicy& p) {
  Transition t = on_exited(l, e, p);
  if (e.exec_errno == 0 || (l.state != S::starting && l.state != S::ready)) return t;
  return as_exec_failure(std::move(t));
}

Transition on_exited(const Lifecycle& l, const Event& e, const LifecyclePolicy& p) {
  Lifecycle n = l;
  switch (l.state) {
    case S::starting:
    case S::ready: {
      // A trial run that exits before it is ready has failed, whatever its exit status.
      // Nobody asked it to exit: a crash, whatever follows.
      const ExitVerdict verdict = l.trial ? ExitVerdict::respawn : judge_exit(p.restart, e.status);
      switch (verdict) {
        case ExitVerdict::fail:
          n.state = S::failed;
          return {n, {act(A::report_crash), act(A::disarm_timer), act(A::report_failed)}};
        case ExitVerdict::stop:
          n.state = S::stopped;
          return {n, {act(A::report_crash), act(A::disarm_timer)}};
        case ExitVerdict::respawn:
          break;
      }
      return prefixed({act(A::report_crash), act(A::disarm_timer)},
                      after_failure(n, after_crash(p.restart, l.failures, e.was_ready, e.uptime, e.jitter)));
    }
    case S::stopping: {
      // Stopped for a ready or watchdog timeout: a crash too, never planned.
      std::vector<Action> first;
      if (l.stop_is_failure) first.push_back(act(A::report_crash));
      if (l.stop_intent == StopIntent::remove) {
        n.state = S::stopped;
        first.push_back(act(A::disarm_timer));
        return {n, std::move(first)};
      }
      if (!l.stop_is_failure) return prefixed({replaced(l.replace_reason)}, enter_starting(n, Start::replacement));
      // It had stopped serving: counted as a crash that was never ready.
      first.push_back(act(A::disarm_timer));
      return prefixed(std::move(first), after_failure(n, after_crash(p.restart, l.failures, false, e.uptime, e.jitter)));
    }
    case S::stopped:
    case S::backoff:
    case S::failed:
      return stay(l);
  }
  return stay(l);
}

Transition on_stop(const Lifecycle& l, const Event& e, const LifecyclePolicy& p) {
  switch (l.state) {
    case S::starting:
    case S::ready:
      return enter_stopping(l, p, e.intent, false, {}, e.reason);
    case S::stopping: {
      // A second request may change what happens after the exit; the timer keeps running.
      Lifecycle n = l;
      n.stop_intent = e.intent;
      n.replace_reason = e.reason;
      return {n, {}};
    }
    case S::backoff:
    case S::failed:
    case S::stopped: {
      if (e.intent == StopIntent::replace) return enter_starting(l, Start::first);
      Lifecycle n = l;
      n.state = S::stopped;
      return {n, {act(A::disarm_timer)}};
    }
  }
  return stay(l);
}

// Stopped as after a watchdog timeout (a crash-like replacement), but SIGCONT follows the
// stop signal, since a stopped process gets no signal but SIGKILL until it continues, and
// SIGKILL follows after stall_kill_after rather than stop_timeout.
Transition on_stalled(const Lifecycle& l, const LifecyclePolicy& p) {
  if (l.state != S::ready) return stay(l);
  Lifecycle n = l;
  n.state = S::stopping;
  n.stop_intent = StopIntent::replace;  // a ready run is never a trial
  n.stop_is_failure = true;
  return {n,
          {act(A::report_stalled), act(A::send_stop_signal), act(A::send_continue),
           act(A::arm_timer, p.stall_kill_after)}};
}

Transition on_kill(const Lifecycle& l) {
  Lifecycle n = l;
  n.stop_intent = StopIntent::remove;
  if (has_process(l.state)) {
    n.state = S::stopping;
    return {n, {act(A::disarm_timer), act(A::send_kill)}};
  }
  n.state = S::stopped;
  return {n, {act(A::disarm_timer)}};
}

}  // namespace

const char* to_string(WorkerState s) {
  switch (s) {
    case S::stopped: return "stopped";
    case S::starting: return "starting";
    case S::ready: return "ready";
    case S::stopping: return "stopping";
    case S::backoff: return "backoff";
    case S::failed: return "failed";
  }
  return "unknown";
}

const char* to_string(ReplaceReason r) {
  switch (r) {
    case ReplaceReason::reload: return "reload";
    case ReplaceReason::restart: return "restart";
    case ReplaceReason::scale: return "scale";
    case ReplaceReason::memory: return "memory";
    case ReplaceReason::lifetime: return "lifetime";
  }
  return "unknown";
}

bool has_process(WorkerState s) {
  switch (s) {
    case S::starting:
    case S::ready:
    case S::stopping:
      return true;
    case S::stopped:
    case S::backoff:
    case S::failed:
      return false;
  }
  return false;
}

LifecyclePolicy LifecyclePolicy::from(const WorkerConfig& worker) {
  return LifecyclePolicy{worker.ready, worker.ready_timeout, worker.stop_timeout, RestartPolicy::from(worker),
                         std::min(worker.stop_timeout, stalled_kill_after_max)};
}

Transition step(const Lifecycle& l, const Event& e, const LifecyclePolicy& p) {
  switch (e.kind) {
    case E::start: {
      if (has_process(l.state)) return stay(l);
      Lifecycle n = l;
      n.trial = e.trial;
      return enter_starting(n, Start::first);
    }
    case E::spawned:
      return on_spawned(l, e, p);
    case E::spawn_failed:
      return on_spawn_failed(l, e, p);
    case E::timer:
      return on_timer(l, p);
    case E::ready_notified: {
      if (l.state != S::starting || p.ready.kind != ReadyKind::notify) return stay(l);
      return enter_ready(l, {act(A::disarm_timer)});
    }
    case E::watchdog_expired:
      if (l.state != S::starting && l.state != S::ready) return stay(l);
      return enter_stopping(l, p, StopIntent::replace, true, {act(A::report_watchdog)});
    case E::stop:
      return on_stop(l, e, p);
    case E::kill:
      return on_kill(l);
    case E::exited:
      return on_exited_after_exec(l, e, p);
    case E::stalled:
      return on_stalled(l, p);
    case E::seen_accepting:
      if (l.state != S::starting || p.ready.kind != ReadyKind::accepting) return stay(l);
      return enter_ready(l, {act(A::disarm_timer)});
  }
  return stay(l);
}

const char* not_ready_hint(ReadyKind kind) {
  switch (kind) {
    case ReadyKind::accepting:
      return "; it never waited for connections on its socket (ready = \"accepting\" needs accept() or epoll "
             "on the inherited fd 3...; does it bind a socket of its own?)";
    case ReadyKind::notify:
    case ReadyKind::immediate:
    case ReadyKind::alive:
      return "";
  }
  return "";
}

}  // namespace preforkd
