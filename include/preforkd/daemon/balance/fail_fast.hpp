#pragma once
// Fail fast when nobody can answer ([[listen]] fail_fast_after): after every change of the
// workers, and when a listener's threshold passes, core/fail_fast_plan says whether the
// listener refuses; while it does, a libuv poll on each of its held sockets that no worker
// process holds accepts what arrives and resets it (os/connection_reset). The polls
// exist only in that state: otherwise this costs nothing but the check on each change.
// Each polls an epoll instance of the master's own (os/input_watch) rather than the
// socket, and checks that a connection waits before each accept: the socket's open file is
// shared with the workers, so the master neither changes its O_NONBLOCK nor relies on it.

#include <preforkd/core/config.hpp>
#include <preforkd/core/fail_fast_plan.hpp>
#include <preforkd/daemon/supervision/supervisor.hpp>
#include <preforkd/daemon/uv/timer.hpp>
#include <preforkd/daemon/uv/readable_watch.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace preforkd::daemon {

class FailFast {
 public:
  // `config` is the master's running config (its [[listen]] fail_fast_after values apply
  // after a reload even when the sockets stay the same); it must outlive this.
  [[nodiscard]] static Result<std::unique_ptr<FailFast>> open(uv_loop_t* loop, Supervisor& supervisor,
                                                              const Config& config);
  FailFast(const FailFast&) = delete;
  FailFast& operator=(const FailFast&) = delete;
  ~FailFast();

  // The workers changed (or may have): decide again, and start or stop the polls.
  void update();

  struct Facts {
    bool refusing = false;
    std::uint64_t refused_total = 0;
  };
  // For status: what listener `name` does now, and what it has refused since start.
  [[nodiscard]] Facts facts(const std::string& name) const;

 private:
  struct Poll;
  FailFast(uv_loop_t* loop, Supervisor& supervisor, const Config& config);
  [[nodiscard]] Duration threshold(const ListenConfig& listener) const;
  void sync_polls();
  void start(Poll& poll);
  void on_readable(Poll& poll);
  // Stops a poll whose accept failed; update() starts it again.
  void pause(Poll& poll, const std::string& why);

  struct Listener {
    FailFastState state;
    std::uint64_t refused_total = 0;
  };
  uv_loop_t* loop_;
  Supervisor& supervisor_;
  const Config& config_;
  std::unique_ptr<Timer> timer_;  // the next threshold to pass
  std::map<std::string, Listener> listeners_;  // by name
  std::vector<std::unique_ptr<Poll>> polls_;
};

}  // namespace preforkd::daemon
