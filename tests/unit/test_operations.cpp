// The operations serialiser on a real libuv loop: one operation at a time, the next
// started on the loop, and every done called exactly once (daemon/operations/operations.hpp).

#include <preforkd/daemon/operations/operations.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

using namespace preforkd;
using preforkd::daemon::Done;
using preforkd::daemon::Operation;
using preforkd::daemon::Operations;

namespace {

struct Loop {
  uv_loop_t loop{};
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_walk(&loop, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  // One turn: timers due now (the wake-up that starts the next operation) run.
  void turn() { uv_run(&loop, UV_RUN_NOWAIT); }
};

// What the test sees of its operations: which started, each `complete` kept to call
// later, and every done call with its result.
struct Seen {
  std::vector<std::string> started;
  std::map<std::string, Done> completes;
  std::map<std::string, std::vector<std::string>> dones;

  Operation op(OperationKind kind, const std::string& name, bool at_once = false) {
    return Operation{kind,
                     [this, name, at_once](Done complete) {
                       started.push_back(name);
                       if (at_once) return complete(Ok{}, name + " done");
                       completes[name] = std::move(complete);
                     },
                     [this, name](Status st, std::string message) {
                       dones[name].push_back(st ? "ok: " + message : "error: " + st.error());
                     }};
  }
};

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("operations: every done is called exactly once", "[operations]") {
  Loop loop;
  auto opened = Operations::open(&loop.loop);
  REQUIRE(opened);
  Operations& ops = **opened;
  Seen seen;

  ops.submit(seen.op(OperationKind::reload, "reload 1"));
  ops.submit(seen.op(OperationKind::scale, "scale", true));
  ops.submit(seen.op(OperationKind::reload, "reload 2"));
  ops.submit(seen.op(OperationKind::reload, "reload 3"));  // joins reload 2
  ops.submit(seen.op(OperationKind::recycle, "recycle"));  // yields
  ops.submit(seen.op(OperationKind::upgrade, "upgrade"));  // refused while busy
  CHECK(seen.started == V{"reload 1"});
  CHECK(seen.dones["recycle"] == V{"error: busy: a reload is in progress"});
  CHECK(seen.dones["upgrade"] == V{"error: busy: a reload is in progress"});
  CHECK(ops.waiting() == 2);

  seen.completes["reload 1"](Ok{}, "generation 2");
  CHECK(seen.dones["reload 1"] == V{"ok: generation 2"});
  // Not inside the completion of the one before: on the loop's next turn.
  CHECK(seen.started == V{"reload 1"});
  loop.turn();
  // The scale completes at once; the reload behind it starts on the turn after.
  CHECK(seen.dones["scale"] == V{"ok: scale done"});
  loop.turn();
  CHECK(seen.started == V{"reload 1", "scale", "reload 2"});
  seen.completes["reload 2"](Error{"bad config"}, "");
  CHECK(seen.dones["reload 2"] == V{"error: bad config"});
  CHECK(seen.dones["reload 3"] == V{"error: bad config"});
  CHECK_FALSE(ops.busy());

  // A second report of the same end changes nothing.
  seen.completes["reload 1"](Error{"again"}, "");
  seen.completes["reload 2"](Ok{}, "again");
  CHECK(seen.dones["reload 1"] == V{"ok: generation 2"});
  CHECK(seen.dones["reload 2"] == V{"error: bad config"});
  CHECK(seen.dones["reload 3"] == V{"error: bad config"});
  CHECK_FALSE(ops.busy());
}

TEST_CASE("operations: a stop refuses what waits and the running one still ends once", "[operations]") {
  Loop loop;
  auto opened = Operations::open(&loop.loop);
  REQUIRE(opened);
  Operations& ops = **opened;
  Seen seen;
  ops.submit(seen.op(OperationKind::restart, "restart"));
  ops.submit(seen.op(OperationKind::scale, "scale"));
  ops.submit(seen.op(OperationKind::reload, "reload"));
  ops.stop();
  CHECK(seen.dones["scale"] == V{"error: preforkd is stopping"});
  CHECK(seen.dones["reload"] == V{"error: preforkd is stopping"});
  ops.submit(seen.op(OperationKind::reload, "late reload"));
  CHECK(seen.dones["late reload"] == V{"error: preforkd is stopping"});
  seen.completes["restart"](Error{"preforkd is stopping"}, "");
  loop.turn();
  CHECK(seen.started == V{"restart"});
  CHECK(seen.dones["restart"] == V{"error: preforkd is stopping"});
  CHECK_FALSE(ops.busy());

  // One about to start on the loop when the stop comes never starts, and is told so.
  Seen more;
  auto second = Operations::open(&loop.loop);
  REQUIRE(second);
  (*second)->submit(more.op(OperationKind::reload, "first"));
  (*second)->submit(more.op(OperationKind::scale, "next"));
  more.completes["first"](Ok{}, "fine");
  (*second)->stop();
  loop.turn();
  CHECK(more.started == V{"first"});
  CHECK(more.dones["next"] == V{"error: preforkd is stopping"});
}
