#pragma once
// The executor's queue, as s6-supervise's loop has it: inputs are posted, and one loop
// drains them in order. Handling an item may post more; they join the end of the queue
// rather than being handled inside the handler, and a drain() asked for while one is
// running returns at once (the running one takes care of everything). Pure: no loop, no
// clock; table-tested in tests/unit/test_drain_queue.cpp.

#include <algorithm>
#include <deque>
#include <utility>

namespace preforkd {

template <class Item>
class DrainQueue {
 public:
  void post(Item item) { items_.push_back(std::move(item)); }

  // Handles every item, oldest first, including those posted meanwhile. `handle(item)`
  // is called with each; `idle()` runs each time the queue is empty and may post more
  // (then draining goes on). False when a drain was already running.
  template <class Handle, class Idle>
  bool drain(Handle&& handle, Idle&& idle) {
    if (draining_) return false;
    draining_ = true;
    do {
      while (!items_.empty()) {
        Item item = std::move(items_.front());
        items_.pop_front();
        handle(item);
      }
      idle();
    } while (!items_.empty());
    draining_ = false;
    return true;
  }

  template <class Pred>
  [[nodiscard]] bool any_of(Pred&& pred) const {
    return std::any_of(items_.begin(), items_.end(), std::forward<Pred>(pred));
  }
  [[nodiscard]] bool draining() const { return draining_; }
  [[nodiscard]] bool empty() const { return items_.empty(); }

 private:
  std::deque<Item> items_;
  bool draining_ = false;
};

}  // namespace preforkd
