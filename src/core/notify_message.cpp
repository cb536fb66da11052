#include <preforkd/core/notify_message.hpp>

namespace preforkd {

std::optional<NotifyMessage> parse_notify_message(std::string_view datagram) {
  NotifyMessage m;
  bool any = false;
  while (!datagram.empty()) {
    const auto nl = datagram.find('\n');
    std::string_view line = datagram.substr(0, nl);
    datagram = nl == std::string_view::npos ? std::string_view{} : datagram.substr(nl + 1);
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    const std::string_view name = line.substr(0, eq), value = line.substr(eq + 1);
    any = true;
    if (name == "READY") m.ready = m.ready || value == "1";
    else if (name == "WATCHDOG") m.watchdog = m.watchdog || value == "1";
    else if (name == "STOPPING") m.stopping = m.stopping || value == "1";
    else if (name == "RELOADING") m.reloading = m.reloading || value == "1";
    else if (name == "STATUS") m.status = std::string(value);
  }
  if (!any) return std::nullopt;
  return m;
}

}  // namespace preforkd
