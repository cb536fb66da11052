#include <preforkd/core/operation_queue.hpp>

namespace preforkd {

const char* to_string(OperationKind kind) {
  switch (kind) {
    case OperationKind::reload: return "reload";
    case OperationKind::restart: return "restart";
    case OperationKind::scale: return "scale";
    case OperationKind::recycle: return "recycle";
    case OperationKind::upgrade: return "upgrade";
    case OperationKind::pool: return "pool";
  }
  return "operation";
}

bool is_automatic(OperationKind kind) { return kind == OperationKind::recycle || kind == OperationKind::pool; }

namespace {

Admission refused(std::string reason) {
  Admission a;
  a.verdict = Admission::Verdict::refuse;
  a.reason = std::move(reason);
  return a;
}

// "busy: a reload is in progress": what runs (or else what waits first).
std::string busy_reason(const OperationQueue& queue) {
  const QueuedOperation& first = queue.running ? *queue.running : queue.waiting.front();
  const std::string kind = to_string(first.kind);
  const char* article = first.kind == OperationKind::upgrade ? "an " : "a ";
  return "busy: " + std::string(article) + kind + (queue.running ? " is in progress" : " is waiting");
}

}  // namespace

AdmitTransition admit(const OperationQueue& queue, QueuedOperation op, std::size_t bound) {
  AdmitTransition t{queue, {}};
  if (queue.stopping) {
    t.admission = refused("preforkd is stopping");
    return t;
  }
  if (!queue.busy()) {
    t.next.running = op;
    t.admission.verdict = Admission::Verdict::start;
    return t;
  }
  if (is_automatic(op.kind) || op.kind == OperationKind::upgrade) {
    t.admission = refused(busy_reason(queue));
    return t;
  }
  if (op.kind == OperationKind::reload && !queue.waiting.empty() && queue.waiting.back().kind == OperationKind::reload) {
    t.admission.verdict = Admission::Verdict::join;
    t.admission.with = queue.waiting.back().id;
    return t;
  }
  if (queue.waiting.size() >= bound) {
    t.admission = refused("too many operations waiting (" + std::to_string(bound) + ")");
    return t;
  }
  t.next.waiting.push_back(op);
  t.admission.verdict = Admission::Verdict::queue;
  return t;
}

NextTransition complete(const OperationQueue& queue) {
  NextTransition t{queue, std::nullopt};
  t.next.running.reset();
  if (t.next.waiting.empty() || t.next.stopping) return t;
  t.next.running = t.next.waiting.front();
  t.next.waiting.pop_front();
  t.start = t.next.running;
  return t;
}

StopTransition stop_queue(const OperationQueue& queue) {
  StopTransition t{queue, {}};
  t.next.stopping = true;
  t.refused = std::move(t.next.waiting);
  t.next.waiting.clear();
  return t;
}

}  // namespace preforkd
