#pragma once
// A libuv loop on its own thread, for unit tests of the master's servers: call() runs a
// function on the loop and waits for its result.

#include <uv.h>

#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace testsupport {

class LoopThread {
 public:
  LoopThread() {
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &wake_, &LoopThread::woken);
    wake_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~LoopThread() {
    call([this] { uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr); });
    thread_.join();
    uv_loop_close(&loop_);
  }
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;
  uv_loop_t* loop() { return &loop_; }

  template <class F>
  auto call(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    {
      const std::lock_guard lock(mutex_);
      queue_.emplace_back([&task] { task(); });
    }
    uv_async_send(&wake_);
    return result.get();
  }

 private:
  static void woken(uv_async_t* a) {
    auto* self = static_cast<LoopThread*>(a->data);
    std::vector<std::function<void()>> jobs;
    {
      const std::lock_guard lock(self->mutex_);
      jobs.swap(self->queue_);
    }
    for (auto& job : jobs) job();
  }

  uv_loop_t loop_{};
  uv_async_t wake_{};
  std::mutex mutex_;
  std::vector<std::function<void()>> queue_;
  std::thread thread_;
};

}  // namespace testsupport
