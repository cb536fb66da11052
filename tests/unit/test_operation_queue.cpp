// The operation queue's table: what happens to an operation submitted in each state, one
// row per case (core/operation_queue.hpp says the rule).

#include <preforkd/core/operation_queue.hpp>

#include <catch2/catch.hpp>

#include <vector>

using namespace preforkd;
using K = OperationKind;
using V = Admission::Verdict;

namespace {

QueuedOperation op(std::uint64_t id, K kind) { return QueuedOperation{id, kind}; }

OperationQueue state(std::optional<QueuedOperation> running, std::deque<QueuedOperation> waiting, bool stopping = false) {
  OperationQueue q;
  q.running = running;
  q.waiting = std::move(waiting);
  q.stopping = stopping;
  return q;
}

struct Row {
  const char* what;
  OperationQueue before;
  QueuedOperation submitted;
  V verdict;
  std::uint64_t with;  // for join
  const char* reason;  // for refuse
  std::deque<QueuedOperation> waiting_after;
};

}  // namespace

TEST_CASE("operation queue: admission table", "[operation_queue]") {
  constexpr std::size_t bound = 3;
  const std::vector<Row> rows = {
      {"idle: a reload starts", state({}, {}), op(1, K::reload), V::start, 0, "", {}},
      {"idle: a recycle starts", state({}, {}), op(1, K::recycle), V::start, 0, "", {}},
      {"idle: an upgrade starts", state({}, {}), op(1, K::upgrade), V::start, 0, "", {}},
      {"idle: a pool change starts", state({}, {}), op(1, K::pool), V::start, 0, "", {}},
      {"a scale runs: a reload queues", state(op(1, K::scale), {}), op(2, K::reload), V::queue, 0, "",
       {op(2, K::reload)}},
      {"a reload runs: a scale queues", state(op(1, K::reload), {}), op(2, K::scale), V::queue, 0, "",
       {op(2, K::scale)}},
      {"a reload runs: a reload queues (the running one read the file already)", state(op(1, K::reload), {}),
       op(2, K::reload), V::queue, 0, "", {op(2, K::reload)}},
      {"a reload waits last: another reload joins it", state(op(1, K::scale), {op(2, K::reload)}), op(3, K::reload),
       V::join, 2, "", {op(2, K::reload)}},
      {"a reload waits but not last: a reload queues behind the scale",
       state(op(1, K::scale), {op(2, K::reload), op(3, K::scale)}), op(4, K::reload), V::queue, 0, "",
       {op(2, K::reload), op(3, K::scale), op(4, K::reload)}},
      {"a scale waits last: a scale queues (each resolves its target when it runs)",
       state(op(1, K::reload), {op(2, K::scale)}), op(3, K::scale), V::queue, 0, "",
       {op(2, K::scale), op(3, K::scale)}},
      {"a recycle runs: a restart queues", state(op(1, K::recycle), {}), op(2, K::restart), V::queue, 0, "",
       {op(2, K::restart)}},
      {"a reload runs: a recycle yields", state(op(1, K::reload), {}), op(2, K::recycle), V::refuse, 0,
       "busy: a reload is in progress", {}},
      {"a recycle runs: a recycle yields", state(op(1, K::recycle), {}), op(2, K::recycle), V::refuse, 0,
       "busy: a recycle is in progress", {}},
      {"a scale runs: a pool change yields", state(op(1, K::scale), {}), op(2, K::pool), V::refuse, 0,
       "busy: a scale is in progress", {}},
      {"a reload runs: an upgrade is refused", state(op(1, K::reload), {}), op(2, K::upgrade), V::refuse, 0,
       "busy: a reload is in progress", {}},
      {"stopping: a reload is refused", state({}, {}, true), op(1, K::reload), V::refuse, 0, "preforkd is stopping", {}},
      {"stopping: a scale is refused", state(op(1, K::reload), {}, true), op(2, K::scale), V::refuse, 0,
       "preforkd is stopping", {}},
      {"the queue is full: a restart is refused",
       state(op(1, K::reload), {op(2, K::scale), op(3, K::restart), op(4, K::scale)}), op(5, K::restart), V::refuse, 0,
       "too many operations waiting (3)", {op(2, K::scale), op(3, K::restart), op(4, K::scale)}},
      {"the queue is full: a reload still joins the waiting reload last",
       state(op(1, K::scale), {op(2, K::scale), op(3, K::restart), op(4, K::reload)}), op(5, K::reload), V::join, 4, "",
       {op(2, K::scale), op(3, K::restart), op(4, K::reload)}},
  };
  for (const Row& row : rows) {
    INFO(row.what);
    const AdmitTransition t = admit(row.before, row.submitted, bound);
    CHECK(t.admission.verdict == row.verdict);
    CHECK(t.admission.with == row.with);
    CHECK(t.admission.reason == row.reason);
    CHECK(t.next.waiting == row.waiting_after);
    // Only a start changes what runs.
    if (row.verdict == V::start)
      CHECK(t.next.running == std::optional<QueuedOperation>(row.submitted));
    else
      CHECK(t.next.running == row.before.running);
  }
}

TEST_CASE("operation queue: completion starts the oldest waiting one", "[operation_queue]") {
  NextTransition t = complete(state(op(1, K::reload), {op(2, K::scale), op(3, K::reload)}));
  CHECK(t.start == std::optional<QueuedOperation>(op(2, K::scale)));
  CHECK(t.next.running == std::optional<QueuedOperation>(op(2, K::scale)));
  CHECK(t.next.waiting == std::deque<QueuedOperation>{op(3, K::reload)});
  t = complete(t.next);
  CHECK(t.start == std::optional<QueuedOperation>(op(3, K::reload)));
  t = complete(t.next);
  CHECK_FALSE(t.start);
  CHECK_FALSE(t.next.busy());
}

TEST_CASE("operation queue: a stop refuses what waits and lets the running one end", "[operation_queue]") {
  const StopTransition s = stop_queue(state(op(1, K::restart), {op(2, K::scale), op(3, K::reload)}));
  CHECK(s.refused == std::deque<QueuedOperation>{op(2, K::scale), op(3, K::reload)});
  CHECK(s.next.stopping);
  CHECK(s.next.running == std::optional<QueuedOperation>(op(1, K::restart)));
  // Its completion starts nothing.
  const NextTransition t = complete(s.next);
  CHECK_FALSE(t.start);
  CHECK_FALSE(t.next.busy());
}
