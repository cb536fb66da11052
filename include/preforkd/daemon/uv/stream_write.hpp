#pragma once
// One buffer written to a libuv stream and owned until libuv is done with it. Shared by the
// control socket and the metrics endpoint, which both count the bytes a client has not yet
// read (their bound on unsent replies).

#include <uv.h>

#include <cstddef>
#include <string>

namespace preforkd::daemon {

// Called exactly once per successful write_owned(): when the bytes are written, or with
// UV_ECANCELED (or another error) if the stream closes first. The owner of the stream is
// found through stream->data, which UvHandle sets to nullptr when it closes the handle.
using WriteDone = void (*)(uv_stream_t* stream, std::size_t bytes, int status);

// Queues `data` on `stream`; libuv's error code if it cannot (then `done` is not called).
[[nodiscard]] int write_owned(uv_stream_t* stream, std::string data, WriteDone done);

}  // namespace preforkd::daemon
