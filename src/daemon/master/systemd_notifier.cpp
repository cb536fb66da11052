#include <preforkd/daemon/master/systemd_notifier.hpp>

#include <preforkd/os/sys_error.hpp>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <ctime>

namespace preforkd::daemon {

SystemdNotifier::SystemdNotifier(uv_loop_t* loop) {
  enabled_ = std::getenv("NOTIFY_SOCKET") != nullptr;
  uint64_t usec = 0;
  // Only when WATCHDOG_PID is ours (or unset): sd_watchdog_enabled checks that.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    // Pings at half the period, as sd_watchdog_enabled(3) advises.
    const auto half = std::chrono::duration_cast<Duration>(std::chrono::microseconds(usec / 2));
    const Duration period = std::max(half, Duration(1));
    auto timer = Timer::open(loop, [this] { send("WATCHDOG=1"); });
    if (!timer) {
      spdlog::error("systemd watchdog: {}; not pinging", timer.error());
      return;
    }
    watchdog_ = std::move(*timer);
    watchdog_->start(period, period);
    spdlog::debug("systemd watchdog: pinging every {}", format_duration(period));
  }
}

void SystemdNotifier::send(const std::string& message) {
  if (!enabled_) return;
  if (int r = sd_notify(0, message.c_str()); r < 0)
    spdlog::debug("sd_notify failed: {}, ignoring", os::errno_text(-r));
}

void SystemdNotifier::ready() {
  ready_sent_ = true;
  send("READY=1\nSTATUS=" + status_);
}

void SystemdNotifier::reloading() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL + static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void SystemdNotifier::stopping() { send("STOPPING=1"); }

void SystemdNotifier::status(const std::string& text) {
  if (text == status_) return;
  status_ = text;
  send("STATUS=" + text);
}

}  // namespace preforkd::daemon
