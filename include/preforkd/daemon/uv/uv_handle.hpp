#pragma once
// RAII over libuv handles: the handle lives on the heap until libuv's close callback,
// since uv_close is asynchronous; C callbacks recover the owner from handle->data.

#include <uv.h>

#include <functional>
#include <utility>

namespace preforkd::daemon {

template <class H>
class UvHandle {
 public:
  UvHandle() : h_(new H{}) {}
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  ~UvHandle() { close(); }

  H* get() { return h_; }
  uv_handle_t* base() { return reinterpret_cast<uv_handle_t*>(h_); }
  void close() {
    if (h_ == nullptr) return;
    H* h = std::exchange(h_, nullptr);
    auto* base = reinterpret_cast<uv_handle_t*>(h);
    base->data = nullptr;
    // A handle that was never initialised (no loop) is simply freed.
    if (base->loop == nullptr) {
      delete h;
      return;
    }
    if (!uv_is_closing(base)) uv_close(base, [](uv_handle_t* b) { delete reinterpret_cast<H*>(b); });
  }

 private:
  H* h_;
};

}  // namespace preforkd::daemon
