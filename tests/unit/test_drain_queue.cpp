// The executor's queue: order, non-reentrancy, and what the idle step may add.

#include <preforkd/core/drain_queue.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using preforkd::DrainQueue;

TEST_CASE("items are handled oldest first - what a handler posts waits its turn") {
  DrainQueue<std::string> q;
  std::vector<std::string> seen;
  q.post("start a");
  q.post("start b");
  const bool ran = q.drain(
      [&](const std::string& item) {
        seen.push_back(item);
        // Carrying out "start" causes "spawned": queued, not handled inside this call.
        if (item.rfind("start ", 0) == 0) q.post("spawned " + item.substr(6));
      },
      [] {});
  CHECK(ran);
  CHECK(seen == std::vector<std::string>{"start a", "start b", "spawned a", "spawned b"});
  CHECK(q.empty());
}

TEST_CASE("a drain asked for inside a drain returns at once - the outer one handles everything") {
  DrainQueue<int> q;
  std::vector<int> seen;
  std::vector<bool> inner;
  q.post(1);
  q.drain(
      [&](int item) {
        seen.push_back(item);
        if (item == 1) {
          q.post(2);
          inner.push_back(q.drain([&](int i) { seen.push_back(100 + i); }, [] {}));
        }
      },
      [] {});
  CHECK(inner == std::vector<bool>{false});
  CHECK(seen == std::vector<int>{1, 2});
  CHECK_FALSE(q.draining());
}

TEST_CASE("the idle step runs when the queue is empty and what it posts is drained too") {
  DrainQueue<int> q;
  std::vector<std::string> trace;
  int settles = 0;
  q.post(1);
  q.drain([&](int item) { trace.push_back("handle " + std::to_string(item)); },
          [&] {
            trace.push_back("idle");
            // Settling (a slot drained, a rolling update moving on) may cause one more event.
            if (settles++ == 0) q.post(2);
          });
  CHECK(trace == std::vector<std::string>{"handle 1", "idle", "handle 2", "idle"});
}

TEST_CASE("queued items can be looked for - so a run with events pending is not freed") {
  DrainQueue<int> q;
  q.post(7);
  CHECK(q.any_of([](int i) { return i == 7; }));
  CHECK_FALSE(q.any_of([](int i) { return i == 8; }));
}
