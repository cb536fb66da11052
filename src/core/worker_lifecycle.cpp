#include <preforkd/core/worker_lifecycle.hpp>

namespace preforkd {

namespace {

using A = Action::Kind;
using E = Event::Kind;
using S = WorkerState;

Action act(A kind, Duration delay = {}) { return Action{kind, delay}; }

Transition stay(const Lifecycle& l) { return {l, {}}; }

Transition enter_starting(Lifecycle l) {
  l.state = S::starting;
  l.stop_is_failure = false;
  return {l, {act(A::disarm_timer), act(A::spawn)}};
}

// What happens after a failed run: start again at once, back off, or give up.
Transition after_failure(Lifecycle l, const Event& e, const LifecyclePolicy& p, int failures) {
  l.failures = failures;
  const Duration delay = backoff_delay(p.restart, l.failures, e.jitter);
  if (delay == Duration::zero()) return enter_starting(l);
  l.state = S::backoff;
  return {l, {act(A::arm_timer, delay)}};
}

Transition enter_stopping(Lifecycle l, const LifecyclePolicy& p, StopIntent intent, bool failure,
                          std::vector<Action> first = {}) {
  l.state = S::stopping;
  l.stop_intent = intent;
  l.stop_is_failure = failure;
  first.push_back(act(A::send_stop_signal));
  first.push_back(act(A::arm_timer, p.stop_timeout));
  return {l, std::move(first)};
}

Transition on_spawned(const Lifecycle& l, const LifecyclePolicy& p) {
  if (l.state != S::starting) return stay(l);
  switch (p.ready.kind) {
    case ReadyKind::immediate: {
      Lifecycle n = l;
      n.state = S::ready;
      return {n, {}};
    }
    case ReadyKind::alive:
      return {l, {act(A::arm_timer, p.ready.alive_for)}};
    case ReadyKind::notify:
      return {l, {act(A::arm_timer, p.ready_timeout)}};
  }
  return stay(l);
}

Transition on_timer(const Lifecycle& l, const LifecyclePolicy& p) {
  switch (l.state) {
    case S::starting:
      if (p.ready.kind == ReadyKind::alive) {
        Lifecycle n = l;
        n.state = S::ready;
        return {n, {}};
      }
      // notify: READY=1 never came.
      return enter_stopping(l, p, StopIntent::replace, true, {act(A::report_ready_timeout)});
    case S::backoff:
      return enter_starting(l);
    case S::stopping:
      return {l, {act(A::send_kill)}};
    case S::stopped:
    case S::ready:
    case S::failed:
      return stay(l);
  }
  return stay(l);
}

Transition on_exited(const Lifecycle& l, const Event& e, const LifecyclePolicy& p) {
  Lifecycle n = l;
  switch (l.state) {
    case S::starting:
    case S::ready: {
      switch (judge_exit(p.restart, e.status)) {
        case ExitVerdict::fail:
          n.state = S::failed;
          return {n, {act(A::disarm_timer)}};
        case ExitVerdict::stop:
          n.state = S::stopped;
          return {n, {act(A::disarm_timer)}};
        case ExitVerdict::respawn:
          break;
      }
      auto t = after_failure(n, e, p, next_failure_count(p.restart, l.failures, e.was_ready, e.uptime));
      t.actions.insert(t.actions.begin(), act(A::disarm_timer));
      return t;
    }
    case S::stopping: {
      if (l.stop_intent == StopIntent::remove) {
        n.state = S::stopped;
        return {n, {act(A::disarm_timer)}};
      }
      if (!l.stop_is_failure) return enter_starting(n);
      auto t = after_failure(n, e, p, l.failures + 1);
      t.actions.insert(t.actions.begin(), act(A::disarm_timer));
      return t;
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
      return enter_stopping(l, p, e.intent, false);
    case S::stopping: {
      // A second request may change what happens after the exit; the timer keeps running.
      Lifecycle n = l;
      n.stop_intent = e.intent;
      return {n, {}};
    }
    case S::backoff:
    case S::failed:
    case S::stopped: {
      if (e.intent == StopIntent::replace) return enter_starting(l);
      Lifecycle n = l;
      n.state = S::stopped;
      return {n, {act(A::disarm_timer)}};
    }
  }
  return stay(l);
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
  return LifecyclePolicy{worker.ready, worker.ready_timeout, worker.stop_timeout, RestartPolicy::from(worker)};
}

Transition step(const Lifecycle& l, const Event& e, const LifecyclePolicy& p) {
  switch (e.kind) {
    case E::start:
      if (has_process(l.state)) return stay(l);
      return enter_starting(l);
    case E::spawned:
      return on_spawned(l, p);
    case E::spawn_failed: {
      if (l.state != S::starting) return stay(l);
      return after_failure(l, e, p, l.failures + 1);
    }
    case E::timer:
      return on_timer(l, p);
    case E::ready_notified: {
      if (l.state != S::starting || p.ready.kind != ReadyKind::notify) return stay(l);
      Lifecycle n = l;
      n.state = S::ready;
      return {n, {act(A::disarm_timer)}};
    }
    case E::watchdog_expired:
      if (l.state != S::starting && l.state != S::ready) return stay(l);
      return enter_stopping(l, p, StopIntent::replace, true, {act(A::report_watchdog)});
    case E::stop:
      return on_stop(l, e, p);
    case E::kill:
      return on_kill(l);
    case E::exited:
      return on_exited(l, e, p);
  }
  return stay(l);
}

}  // namespace preforkd
