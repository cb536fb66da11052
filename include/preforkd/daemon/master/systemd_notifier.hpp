#pragma once
// The master's own sd_notify conversation with systemd (or whatever started it with a
// NOTIFY_SOCKET): READY=1, RELOADING=1, STOPPING=1, STATUS= and watchdog pings.
// Without NOTIFY_SOCKET every call does nothing.

#include <preforkd/daemon/uv/timer.hpp>

#include <memory>
#include <string>

namespace preforkd::daemon {

class SystemdNotifier {
 public:
  explicit SystemdNotifier(uv_loop_t* loop);

  void ready();
  void reloading();
  void stopping();
  // Sends STATUS= when the text changed since the last one.
  void status(const std::string& text);
  [[nodiscard]] const std::string& last_status() const { return status_; }
  [[nodiscard]] bool ready_sent() const { return ready_sent_; }

 private:
  void send(const std::string& message);

  bool enabled_ = false;
  bool ready_sent_ = false;
  std::string status_;
  std::unique_ptr<Timer> watchdog_;
};

}  // namespace preforkd::daemon
