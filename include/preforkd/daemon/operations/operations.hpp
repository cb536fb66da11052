#pragma once
// The one holder of "an operation is in progress". Reload, restart, scale (preforkctl,
// SIGTTIN/SIGTTOU), recycle, upgrade (preforkctl, SIGUSR2) and the adaptive pool's
// grow/shrink are submitted here as Operation values; each starts now, waits its turn,
// shares a waiting reload's result, or is refused, by the one rule in
// core/operation_queue.hpp. One runs at a time, and the next starts on the loop once it
// is complete, never inside the completion of the one before.
//
// Guarantee: every submitted operation's `done` is called exactly once — with its result,
// with the result of the reload it joined, or with why it was refused — except an upgrade
// that succeeds: the process is then the new image, which answers the client itself.
//
// To submit one (the adaptive pool, for instance):
//   operations.submit({OperationKind::pool, [&](Done complete) { ...; complete(Ok{}, "grown to 5"); },
//                      [](Status st, std::string message) { ... }});
// `run` must call `complete` once, now or later; the next operation waits for it.

#include <preforkd/core/operation_queue.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/daemon/uv/timer.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace preforkd::daemon {

// The outcome of an operation that may take a while (the same type as the supervisor's).
using Done = std::function<void(Status result, std::string message)>;

struct Operation {
  OperationKind kind = OperationKind::reload;
  // Starts it, with its parameters captured; calls its argument once when it is complete.
  std::function<void(Done complete)> run;
  // Told how it ended (or why it never ran), exactly once.
  Done done;
};

class Operations {
 public:
  [[nodiscard]] static Result<std::unique_ptr<Operations>> open(uv_loop_t* loop);
  Operations(const Operations&) = delete;
  Operations& operator=(const Operations&) = delete;

  void submit(Operation op);
  // preforkd is stopping: what waits is refused now ("preforkd is stopping"); the running
  // operation ends as the stop makes it end; nothing is accepted any more.
  void stop();
  // Something runs or waits: automatic operations (recycle, pool) yield to it.
  [[nodiscard]] bool busy() const { return queue_.busy(); }
  // What runs (or is about to start), if anything.
  [[nodiscard]] std::optional<OperationKind> running() const {
    return queue_.running ? std::optional<OperationKind>(queue_.running->kind) : std::nullopt;
  }
  [[nodiscard]] std::size_t waiting() const { return queue_.waiting.size(); }

 private:
  struct Entry {
    Operation op;
    std::vector<Done> joined;  // reloads that share this one's result
  };
  Operations() = default;
  void begin(std::uint64_t id);
  void end(std::uint64_t id, Status result, std::string message);
  void refuse(std::uint64_t id, const std::string& reason);

  OperationQueue queue_;
  std::map<std::uint64_t, Entry> entries_;  // running and waiting, by id
  std::uint64_t serial_ = 0;
  bool begun_ = false;  // the running one has been started (else the wake timer starts it)
  std::unique_ptr<Timer> wake_;
};

}  // namespace preforkd::daemon
