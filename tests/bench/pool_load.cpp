#include "pool_load.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "bench_common.hpp"

namespace bench::pool {
namespace {

constexpr Ms kSampleEvery = 25ms;
constexpr Ms kRequestTimeout = 5s;

void sleep_until_ns(std::int64_t ns) {
  const std::int64_t left = ns - mono_ns();
  if (left > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(left));
}

Result analyse(const std::vector<Request>& requests, const std::vector<Sample>& samples, std::int64_t t0,
               std::int64_t phase_ns, int full) {
  Result r;
  std::vector<double> ms[3], step, after_step;
  const auto step_end = t0 + phase_ns + static_cast<std::int64_t>(kStepWindowSeconds * 1e9);
  for (const Request& q : requests) {
    const auto i = static_cast<std::size_t>((q.start_ns - t0) / phase_ns);
    if (i > 2) continue;
    if (!q.answered) {
      ++r.phase[i].failed;
      continue;
    }
    ms[i].push_back(q.ms);
    if (q.start_ns >= t0 + phase_ns && q.start_ns < step_end) step.push_back(q.ms);
    if (i == 1 && q.start_ns >= step_end) after_step.push_back(q.ms);
  }
  for (std::size_t i = 0; i < 3; ++i) {
    r.phase[i].p50 = percentile(ms[i], 50);
    r.phase[i].p99 = percentile(ms[i], 99);
    r.phase[i].rps = static_cast<double>(ms[i].size()) / (static_cast<double>(phase_ns) / 1e9);
  }
  r.step_p99 = percentile(step, 99);
  r.after_step_p99 = percentile(after_step, 99);

  // Each sample holds until the next one; only the run's own span counts.
  const std::int64_t end = t0 + 3 * phase_ns;
  r.to_full_s = std::nan("");
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const Sample& s = samples[i];
    r.peak = std::max(r.peak, s.workers);
    const std::int64_t from = std::max(s.ns, t0);
    const std::int64_t to = std::min(i + 1 < samples.size() ? samples[i + 1].ns : end, end);
    if (to > from) r.worker_seconds += s.workers * static_cast<double>(to - from) / 1e9;
    if (std::isnan(r.to_full_s) && s.workers >= full && s.ns >= t0 + phase_ns && s.ns < t0 + 2 * phase_ns)
      r.to_full_s = static_cast<double>(s.ns - t0 - phase_ns) / 1e9;
  }
  return r;
}

}  // namespace

Result step_load(int port, pid_t master, double phase_seconds, int full) {
  const auto phase_ns = static_cast<std::int64_t>(phase_seconds * 1e9);
  // How many clients run now; a client whose index is not below it waits. -1: the end.
  std::atomic<int> active{kLowClients};
  std::atomic<bool> sampling{true};
  std::vector<std::vector<Request>> per_client(kHighClients);
  std::vector<Sample> samples;
  const std::int64_t t0 = mono_ns(), end = t0 + 3 * phase_ns;

  std::thread sampler([&] {
    while (sampling) {
      samples.push_back({mono_ns(), live_children(master)});
      std::this_thread::sleep_for(kSampleEvery);
    }
  });
  std::vector<std::thread> clients;
  for (int c = 0; c < kHighClients; ++c) {
    clients.emplace_back([&, c] {
      auto& out = per_client[static_cast<std::size_t>(c)];
      for (;;) {
        const int now = active.load();
        if (now < 0) return;
        if (c >= now) {
          active.wait(now);
          continue;
        }
        const std::int64_t begin = mono_ns();
        if (begin >= end) return;
        const bool answered = http_get(port, kRequestTimeout, nullptr, kPath) == Outcome::answered;
        out.push_back({begin, ns_to_ms(mono_ns() - begin), answered});
      }
    });
  }
  const auto step_to = [&](std::int64_t when, int clients_now) {
    sleep_until_ns(when);
    active = clients_now;
    active.notify_all();
  };
  step_to(t0 + phase_ns, kHighClients);
  step_to(t0 + 2 * phase_ns, kLowClients);
  step_to(end, -1);
  for (auto& t : clients) t.join();
  sampling = false;
  sampler.join();

  std::vector<Request> all;
  for (const auto& v : per_client) all.insert(all.end(), v.begin(), v.end());
  return analyse(all, samples, t0, phase_ns, full);
}

}  // namespace bench::pool
