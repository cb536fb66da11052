#pragma once
// Reads a worker's stdout or stderr pipe on the loop and hands over whole lines.
// A line longer than the limit is handed over in pieces; a last line without a
// newline is handed over at EOF.

#include <preforkd/core/result.hpp>
#include <preforkd/daemon/uv/uv_handle.hpp>
#include <preforkd/os/fd.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace preforkd::daemon {

class LineReader {
 public:
  static constexpr std::size_t max_line = 16 * 1024;

  // Reads `fd` from now on; it is the reader's (closed if it cannot read it). The error
  // names the failing libuv call.
  [[nodiscard]] static Result<std::unique_ptr<LineReader>> open(uv_loop_t* loop, os::Fd fd,
                                                                std::function<void(std::string_view)> on_line);
  // Reads whatever the pipe holds now, without waiting for the loop: called when the
  // worker has exited, so its last lines come before the line that reports its exit
  // and are not lost when a replacement takes its place.
  void drain();
  // The pipe's fd (-1 once closed), for the upgrade handoff.
  [[nodiscard]] int fd();

 private:
  explicit LineReader(std::function<void(std::string_view)> on_line) : on_line_(std::move(on_line)) {}
  static void alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  void consume(std::string_view data);
  void finish();

  UvHandle<uv_pipe_t> handle_;
  std::function<void(std::string_view)> on_line_;
  std::string pending_;
  char buf_[4096];
  bool open_ = false;
};

}  // namespace preforkd::daemon
