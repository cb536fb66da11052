#include <preforkd/daemon/uv/line_reader.hpp>

#include <cerrno>
#include <unistd.h>

namespace preforkd::daemon {

LineReader::LineReader(uv_loop_t* loop, os::Fd fd, std::function<void(std::string_view)> on_line)
    : on_line_(std::move(on_line)) {
  uv_pipe_init(loop, handle_.get(), 0);
  handle_.get()->data = this;
  if (uv_pipe_open(handle_.get(), fd.get()) != 0) return;
  (void)fd.release();  // the pipe handle owns it now
  open_ = uv_read_start(reinterpret_cast<uv_stream_t*>(handle_.get()), &LineReader::alloc, &LineReader::read) == 0;
}

void LineReader::alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<LineReader*>(h->data);
  if (self == nullptr) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  *buf = uv_buf_init(self->buf_, sizeof self->buf_);
}

void LineReader::read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<LineReader*>(s->data);
  if (self == nullptr) return;
  if (n > 0) {
    self->consume(std::string_view(buf->base, static_cast<std::size_t>(n)));
  } else if (n < 0) {
    self->finish();
  }
}

int LineReader::fd() {
  uv_os_fd_t fd = -1;
  if (!open_ || uv_fileno(handle_.base(), &fd) != 0) return -1;
  return fd;
}

void LineReader::drain() {
  if (!open_) return;
  uv_os_fd_t fd = -1;
  if (uv_fileno(handle_.base(), &fd) != 0) return;
  while (open_) {
    const ssize_t n = ::read(fd, buf_, sizeof buf_);
    if (n > 0) {
      consume(std::string_view(buf_, static_cast<std::size_t>(n)));
    } else if (n == 0 || errno != EINTR) {
      // EOF; or EAGAIN: a descendant still holds the pipe, the loop reads the rest.
      if (n == 0) finish();
      return;
    }
  }
}

void LineReader::consume(std::string_view data) {
  while (!data.empty()) {
    const auto nl = data.find('\n');
    if (nl == std::string_view::npos) {
      pending_.append(data);
      if (pending_.size() >= max_line) {
        on_line_(pending_);
        pending_.clear();
      }
      return;
    }
    if (pending_.empty()) {
      on_line_(data.substr(0, nl));
    } else {
      pending_.append(data.substr(0, nl));
      on_line_(pending_);
      pending_.clear();
    }
    data.remove_prefix(nl + 1);
  }
}

void LineReader::finish() {
  if (!pending_.empty()) on_line_(pending_);
  pending_.clear();
  open_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(handle_.get()));
  handle_.close();
}

}  // namespace preforkd::daemon
