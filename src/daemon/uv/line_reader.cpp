#include <preforkd/daemon/uv/line_reader.hpp>

#include <preforkd/daemon/uv/uv_error.hpp>

#include <cerrno>
#include <string>
#include <unistd.h>

namespace preforkd::daemon {

Result<std::unique_ptr<LineReader>> LineReader::open(uv_loop_t* loop, os::Fd fd,
                                                     std::function<void(std::string_view)> on_line) {
  std::unique_ptr<LineReader> self(new LineReader(std::move(on_line)));
  if (const int rc = uv_pipe_init(loop, self->handle_.get(), 0); rc != 0)
    return uv_error("uv_pipe_init", "output pipe", rc);
  self->handle_.get()->data = self.get();
  if (const int rc = uv_pipe_open(self->handle_.get(), fd.get()); rc != 0)
    return uv_error("uv_pipe_open", "output pipe", rc);
  (void)fd.release();  // the pipe handle owns it now
  if (const int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(self->handle_.get()), &LineReader::alloc,
                                   &LineReader::read);
      rc != 0) {
    return uv_error("uv_read_start", "output pipe", rc);
  }
  self->open_ = true;
  return self;
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
  handle_.close();  // stops reading
}

}  // namespace preforkd::daemon
