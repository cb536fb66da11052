#pragma once
// The master's event loop: libuv's loop, opened, run, stopped and closed here.

#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>

#include <uv.h>

namespace preforkd::daemon {

// Initialises `loop`. The error names the failing libuv call.
[[nodiscard]] Status open_loop(uv_loop_t* loop);
// Runs `loop` until nothing is left to do or stop_loop().
void run_loop(uv_loop_t* loop);
// Makes run_loop() return after the current iteration.
void stop_loop(uv_loop_t* loop);
// Closes every handle still open, lets libuv run their close callbacks, and frees the
// loop. A handle that libuv still holds then is logged (the loop's memory is then left).
void close_loop(uv_loop_t* loop);
// The loop's clock: when this iteration started, in milliseconds from an arbitrary point.
[[nodiscard]] Duration loop_now(uv_loop_t* loop);

}  // namespace preforkd::daemon
