#pragma once
// The one rule for operations that take a while (reload, restart, scale, recycle, upgrade,
// and the adaptive pool's grow/shrink): what happens to one submitted while another runs.
// Pure: it holds only each operation's kind and id; daemon/operations/operations.cpp
// holds the operations themselves and carries the verdicts out.
//
// The rule, once:
//   - Nothing runs and nothing waits: it starts now.
//   - preforkd is stopping: refused ("preforkd is stopping"), and so is everything still
//     waiting when the stop comes.
//   - Automatic operations (recycle, pool) yield: while anything runs or waits they are
//     refused ("busy"), never queued, so they never delay an operator's operation; their
//     owner looks again later with fresh facts.
//   - An upgrade is refused while anything runs or waits ("busy: a reload is in
//     progress"): it answers on the control connection that asked, which must still be
//     the one being handled, and a state handed over must be quiet.
//   - A reload submitted while a reload that has not started yet is last in the queue
//     joins it: that reload reads the config file when it starts, so both get the same
//     result (each done is called with it).
//   - Everything else (reload, restart, scale) queues behind, first in first out, and
//     starts when the one before it is complete. A scale is complete once its new workers
//     were started and its removed slots were told to drain.
//   - At most limits::queued_operations wait; one more is refused ("too many operations
//     waiting"). A reload that joins a waiting one takes no place.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

namespace preforkd {

enum class OperationKind { reload, restart, scale, recycle, upgrade, pool };

[[nodiscard]] const char* to_string(OperationKind kind);
// recycle and pool: started by preforkd itself, they yield to the operator's.
[[nodiscard]] bool is_automatic(OperationKind kind);

struct QueuedOperation {
  std::uint64_t id = 0;
  OperationKind kind = OperationKind::reload;
  bool operator==(const QueuedOperation&) const = default;
};

struct OperationQueue {
  std::optional<QueuedOperation> running;
  std::deque<QueuedOperation> waiting;  // oldest first
  bool stopping = false;
  bool operator==(const OperationQueue&) const = default;

  [[nodiscard]] bool busy() const { return running.has_value() || !waiting.empty(); }
};

struct Admission {
  enum class Verdict {
    start,   // it runs now
    queue,   // it waits at the end of the queue
    join,    // it shares the result of the waiting operation `with`
    refuse,  // it never runs: `reason`
  };
  Verdict verdict = Verdict::start;
  std::uint64_t with = 0;
  std::string reason;
  bool operator==(const Admission&) const = default;
};

struct AdmitTransition {
  OperationQueue next;
  Admission admission;
};

// Operation `id` of `kind` is submitted. `bound`: how many may wait (limits::queued_operations).
[[nodiscard]] AdmitTransition admit(const OperationQueue& queue, QueuedOperation op, std::size_t bound);

struct NextTransition {
  OperationQueue next;
  std::optional<QueuedOperation> start;  // the operation that starts now, if any
};

// The running operation is complete: the next waiting one, if any, starts.
[[nodiscard]] NextTransition complete(const OperationQueue& queue);

struct StopTransition {
  OperationQueue next;
  std::deque<QueuedOperation> refused;  // the waiting ones: they never run
};

// preforkd is stopping: what waits is refused, the running operation ends on its own.
[[nodiscard]] StopTransition stop_queue(const OperationQueue& queue);

}  // namespace preforkd
