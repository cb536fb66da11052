#include <preforkd/daemon/operations/operations.hpp>

#include <preforkd/core/limits.hpp>

#include <spdlog/spdlog.h>

namespace preforkd::daemon {

Result<std::unique_ptr<Operations>> Operations::open(uv_loop_t* loop) {
  std::unique_ptr<Operations> self(new Operations());
  Operations* raw = self.get();
  auto wake = Timer::open(loop, [raw] {
    if (raw->queue_.running && !raw->begun_) raw->begin(raw->queue_.running->id);
  });
  if (!wake) return Error{"operations timer: " + wake.error()};
  self->wake_ = std::move(*wake);
  return self;
}

void Operations::submit(Operation op) {
  const std::uint64_t id = ++serial_;
  const OperationKind kind = op.kind;
  AdmitTransition t = admit(queue_, QueuedOperation{id, kind}, limits::queued_operations);
  queue_ = std::move(t.next);
  switch (t.admission.verdict) {
    case Admission::Verdict::refuse:
      if (op.done) op.done(Error{t.admission.reason}, "");
      return;
    case Admission::Verdict::join:
      spdlog::debug("{} joins the reload waiting before it: both get its result", to_string(kind));
      entries_.at(t.admission.with).joined.push_back(std::move(op.done));
      return;
    case Admission::Verdict::queue:
      spdlog::info("{} waits for the {} in progress ({} waiting)", to_string(kind), to_string(queue_.running->kind),
                   queue_.waiting.size());
      entries_.emplace(id, Entry{std::move(op), {}});
      return;
    case Admission::Verdict::start:
      entries_.emplace(id, Entry{std::move(op), {}});
      begin(id);
      return;
  }
}

void Operations::begin(std::uint64_t id) {
  begun_ = true;
  auto once = std::make_shared<bool>(false);
  Done complete = [this, id, once](Status result, std::string message) {
    if (*once) {
      spdlog::error("an operation reported its end twice; the second is ignored");
      return;
    }
    *once = true;
    end(id, std::move(result), std::move(message));
  };
  // A copy: `run` may complete at once, and its entry goes then.
  auto run = entries_.at(id).op.run;
  run(std::move(complete));
}

void Operations::end(std::uint64_t id, Status result, std::string message) {
  auto node = entries_.extract(id);
  NextTransition t = complete(queue_);
  queue_ = std::move(t.next);
  begun_ = false;
  // The next one starts on the loop, not inside the completion of this one.
  if (t.start) wake_->start(Duration::zero());
  if (node.empty()) return;
  Entry& e = node.mapped();
  if (e.op.done) e.op.done(result, message);
  for (Done& joined : e.joined)
    if (joined) joined(result, message);
}

void Operations::refuse(std::uint64_t id, const std::string& reason) {
  auto node = entries_.extract(id);
  if (node.empty()) return;
  Entry& e = node.mapped();
  if (e.op.done) e.op.done(Error{reason}, "");
  for (Done& joined : e.joined)
    if (joined) joined(Error{reason}, "");
}

void Operations::stop() {
  StopTransition t = stop_queue(queue_);
  queue_ = std::move(t.next);
  // One that was to start on the loop never does.
  if (queue_.running && !begun_) {
    t.refused.push_front(*queue_.running);
    queue_.running.reset();
    wake_->stop();
  }
  for (const QueuedOperation& q : t.refused) refuse(q.id, "preforkd is stopping");
}

}  // namespace preforkd::daemon
