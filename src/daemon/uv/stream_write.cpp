#include <preforkd/daemon/uv/stream_write.hpp>

#include <memory>
#include <utility>

namespace preforkd::daemon {
namespace {

// Freed by on_written, which libuv always calls once the request was queued.
struct WriteRequest {
  uv_write_t req{};
  std::string data;
  WriteDone done = nullptr;
};

void on_written(uv_write_t* req, int status) {
  const std::unique_ptr<WriteRequest> w(static_cast<WriteRequest*>(req->data));
  w->done(req->handle, w->data.size(), status);
}

}  // namespace

int write_owned(uv_stream_t* stream, std::string data, WriteDone done) {
  auto w = std::make_unique<WriteRequest>();
  w->data = std::move(data);
  w->done = done;
  w->req.data = w.get();
  const uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (const int rc = uv_write(&w->req, stream, &buf, 1, &on_written); rc != 0) return rc;
  (void)w.release();  // on_written frees it
  return 0;
}

}  // namespace preforkd::daemon
