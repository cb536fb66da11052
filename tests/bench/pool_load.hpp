#pragma once
// The load of the pool benchmark (issue 20 point 6) and what is read from one run of it:
// fresh-connection clients stepping 1 -> 8 -> 1 concurrent, one phase each, every
// request's start and latency recorded, and the server's workers counted meanwhile from
// /proc (the live children of its master) every 25 ms.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bench::pool {

constexpr int kLowClients = 1;
constexpr int kHighClients = 8;
// The worker's cost: synchronous, one request at a time, 20 ms each.
inline const std::string kPath = "/?ms=20";
// The "step" window: the first seconds of the high phase, where a pool still grows.
constexpr double kStepWindowSeconds = 2.0;

struct Request {
  std::int64_t start_ns = 0;
  double ms = 0;
  bool answered = false;
};
struct Sample {
  std::int64_t ns = 0;
  int workers = 0;
};

struct Phase {
  double p50 = 0, p99 = 0, rps = 0;
  long failed = 0;
};

// What one row's run measured.
struct Result {
  Phase phase[3];             // 1 client, 8 clients, 1 client again
  double step_p99 = 0;        // of the requests started in the step window
  double after_step_p99 = 0;  // of the high phase's requests started after the step window
  double to_full_s = 0;       // from the 1 -> 8 step until `full` workers; NaN: never in the high phase
  double worker_seconds = 0;
  int peak = 0;
};

// Runs the three phases of `phase_seconds` each against 127.0.0.1:port while counting
// the live children of `master`; `full` is the count that means "8 workers serve".
Result step_load(int port, pid_t master, double phase_seconds, int full);

}  // namespace bench::pool
