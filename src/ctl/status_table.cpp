#include <preforkd/ctl/status_table.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <unistd.h>
#include <vector>

namespace preforkd::ctl {
namespace {

constexpr const char* green = "\033[32m";
constexpr const char* yellow = "\033[33m";
constexpr const char* red = "\033[31m";
constexpr const char* bold = "\033[1m";
constexpr const char* reset = "\033[0m";

struct Cell {
  std::string text;
  const char* colour = nullptr;  // an escape sequence, or none
};

using Row = std::vector<Cell>;

// Healthy green, on the way somewhere yellow, given up red.
const char* state_colour(const std::string& state) {
  if (state == "ready") return green;
  if (state == "starting" || state == "stopping" || state == "backoff") return yellow;
  if (state == "failed") return red;
  return nullptr;
}

// Columns two spaces apart, padded by their visible width so escapes do not shift them;
// the last column is not padded, so no line ends in spaces.
std::string render_table(const std::vector<Row>& rows, Colour colour) {
  std::vector<std::size_t> widths;
  for (const Row& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].text.size());
  }
  std::string out;
  for (const Row& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Cell& cell = row[i];
      const bool paint = colour == Colour::on && cell.colour != nullptr;
      if (paint) out += cell.colour;
      out += cell.text;
      if (paint) out += reset;
      if (i + 1 < row.size()) out.append(widths[i] - cell.text.size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

std::string dash_if(bool missing, std::string text) { return missing ? "-" : std::move(text); }

std::string last_exit_text(const std::optional<control::LastExitInfo>& last) {
  if (!last) return "-";
  return fmt::format("{}, {} ago", last->text, format_uptime(last->ago_s));
}

std::string queue_text(const control::ListenerStatus& l) {
  const auto depth = [](int d) { return d < 0 ? std::string("-") : std::to_string(d); };
  if (l.queue_depth.empty()) return "-";
  if (l.mode != "reuseport") return depth(l.queue_depth.front());
  std::string text;
  for (std::size_t slot = 0; slot < l.queue_depth.size(); ++slot) {
    if (slot > 0) text += ' ';
    text += fmt::format("{}:{}", slot, depth(l.queue_depth[slot]));
  }
  return text;
}

// "256KiB", "4MiB", or bytes when it is no whole number of either.
std::string size_text(std::int64_t bytes) {
  if (bytes % (1024 * 1024) == 0) return fmt::format("{}MiB", bytes / (1024 * 1024));
  if (bytes % 1024 == 0) return fmt::format("{}KiB", bytes / 1024);
  return fmt::format("{}B", bytes);
}

// The socket options a listener sets, as ", keep_alive, receive_buffer 256KiB"; only
// those set (IPv6-only binding is the default and left out).
std::string socket_options_text(const control::ListenerStatus& l) {
  std::string text;
  if (l.keep_alive) text += ", keep_alive";
  if (l.keep_alive_time_s > 0) text += fmt::format(", keep_alive_time {}s", l.keep_alive_time_s);
  if (l.keep_alive_interval_s > 0) text += fmt::format(", keep_alive_interval {}s", l.keep_alive_interval_s);
  if (l.keep_alive_probes > 0) text += fmt::format(", keep_alive_probes {}", l.keep_alive_probes);
  if (l.receive_buffer > 0) text += fmt::format(", receive_buffer {}", size_text(l.receive_buffer));
  if (l.send_buffer > 0) text += fmt::format(", send_buffer {}", size_text(l.send_buffer));
  if (l.no_delay) text += ", no_delay";
  if (l.free_bind) text += ", free_bind";
  if (!l.bind_ipv6_only.empty() && l.bind_ipv6_only != "ipv6-only")
    text += fmt::format(", bind_ipv6_only {}", l.bind_ipv6_only);
  if (!l.bind_to_device.empty()) text += fmt::format(", bind_to_device {}", l.bind_to_device);
  if (l.non_blocking) text += ", non_blocking";
  return text;
}

}  // namespace

Colour colour_for(int fd, const char* no_color_env) {
  if (no_color_env != nullptr && no_color_env[0] != '\0') return Colour::off;
  return ::isatty(fd) == 1 ? Colour::on : Colour::off;
}

std::string format_uptime(double seconds) {
  if (!(seconds > 0)) return "0s";
  const auto total = static_cast<long long>(std::floor(seconds));
  const long long d = total / 86400, h = total / 3600 % 24, m = total / 60 % 60, s = total % 60;
  if (d > 0) return h > 0 ? fmt::format("{}d{}h", d, h) : fmt::format("{}d", d);
  if (h > 0) return m > 0 ? fmt::format("{}h{}m", h, m) : fmt::format("{}h", h);
  if (m > 0) return s > 0 ? fmt::format("{}m{}s", m, s) : fmt::format("{}m", m);
  return fmt::format("{}s", s);
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  // 1023.96 MiB would print as "1024.0 MiB"; move up before rounding gets there.
  while (value >= 1023.95 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, units[unit]);
}

std::string memory_summary(const control::MemorySummary& m) {
  if (m.workers == 0 || m.pss_bytes == 0) return "";
  std::string text = fmt::format("{} worker{}: {} private + {} shared (PSS {})", m.workers, m.workers == 1 ? "" : "s",
                                 format_bytes(m.uss_bytes), format_bytes(m.shared_bytes), format_bytes(m.pss_bytes));
  if (m.master_uss_bytes > 0) text += fmt::format("; master {} private", format_bytes(m.master_uss_bytes));
  return text;
}

std::string render_status(const control::StatusSnapshot& status, Colour colour) {
  const auto& m = status.master;
  std::string out = fmt::format("preforkd {} (pid {})  config {}  generation {}  up {}  workers {}/{} ready\n",
                                m.version, m.pid, m.config, m.generation, format_uptime(m.uptime_s), m.workers_ready,
                                m.workers_total);
  if (!m.notify_status.empty()) out += fmt::format("status: {}\n", m.notify_status);
  if (const std::string pool = control::pool_summary(status.pool); !pool.empty()) out += pool + '\n';

  const bool any_notes = std::any_of(status.workers.begin(), status.workers.end(),
                                     [](const control::WorkerStatus& w) { return !w.notify_status.empty(); });
  const char* heading = colour == Colour::on ? bold : nullptr;
  std::vector<Row> workers;
  Row header;
  for (const char* title : {"SLOT", "PID", "STATE", "RESTARTS", "CRASHES", "REPLACED", "UPTIME", "RSS", "PSS", "USS", "PROCS",
                            "CPU%", "LOAD", "QUEUED", "LAST EXIT"}) {
    header.push_back({title, heading});
  }
  // Only when worker.cpu_affinity pins them.
  const bool any_pinned = std::any_of(status.workers.begin(), status.workers.end(),
                                      [](const control::WorkerStatus& w) { return !w.cpus.empty(); });
  if (any_pinned) header.push_back({"CPUS", heading});
  // Only once a slot has been recycled (worker.max_memory, max_lifetime): the last reason.
  const bool any_recycled = std::any_of(status.workers.begin(), status.workers.end(),
                                        [](const control::WorkerStatus& w) { return !w.recycled.empty(); });
  if (any_recycled) header.push_back({"RECYCLED", heading});
  if (any_notes) header.push_back({"STATUS", heading});
  workers.push_back(std::move(header));
  for (const auto& w : status.workers) {
    const bool gone = w.pid < 0;
    Row row{{std::to_string(w.slot)},
            {dash_if(gone, std::to_string(w.pid))},
            {w.state, state_colour(w.state)},
            {std::to_string(w.restarts)},
            {std::to_string(w.crashes)},       // unplanned exits
            {std::to_string(w.replacements)},  // planned: reload, restart, scale
            {dash_if(gone, format_uptime(w.uptime_s))},
            {dash_if(gone || w.rss_bytes == 0, format_bytes(w.rss_bytes))},
            {dash_if(gone || w.pss_bytes == 0, format_bytes(w.pss_bytes))},
            {dash_if(gone || w.uss_bytes == 0, format_bytes(w.uss_bytes))},
            {dash_if(gone || w.processes == 0, std::to_string(w.processes))},
            {dash_if(gone, fmt::format("{:.1f}", w.cpu_percent))},
            {dash_if(gone || w.activity == "unknown", w.activity)},  // waiting|busy: balanced accept
            {dash_if(gone, std::to_string(w.queued))},
            {last_exit_text(w.last_exit)}};
    if (any_pinned) row.push_back({dash_if(gone || w.cpus.empty(), w.cpus)});
    if (any_recycled) row.push_back({dash_if(w.recycled.empty(), w.recycled)});
    if (any_notes) row.push_back({w.notify_status});
    workers.push_back(std::move(row));
  }
  out += '\n';
  out += render_table(workers, colour);
  if (const std::string memory = memory_summary(status.memory); !memory.empty()) out += memory + '\n';

  if (!status.listeners.empty()) {
    std::vector<Row> listeners;
    listeners.push_back({{"LISTENER", heading},
                         {"ADDRESS", heading},
                         {"MODE", heading},
                         {"ACCEPT QUEUE", heading},
                         {"REFUSED", heading}});
    for (const auto& l : status.listeners) {
      std::string mode = l.balance.empty()       ? l.mode
                         : l.balanced_by.empty() ? l.mode + " (" + l.balance + ")"
                                                 : l.mode + " (" + l.balance + ", " + l.balanced_by + ")";
      if (l.defer_accept_s > 0) mode += fmt::format(", defer_accept {}s", l.defer_accept_s);
      if (l.fastopen > 0) mode += fmt::format(", fastopen {}", l.fastopen);
      mode += socket_options_text(l);
      listeners.push_back(
          {{l.name},
           {l.address},
           {mode},
           {queue_text(l)},
           // fail_fast_after: resets since start, and whether it is refusing now
           {l.refusing ? fmt::format("{}, refusing: no worker ready", l.refused_total) : std::to_string(l.refused_total),
            l.refusing ? red : nullptr}});
    }
    out += '\n';
    out += render_table(listeners, colour);
    // A kernel balancer that failed at run time: the table says "sampler", this says why.
    for (const auto& l : status.listeners) {
      if (!l.ebpf_error.empty())
        out += fmt::format("listener '{}': the eBPF balancer failed, the master's sampler balances it: {}\n", l.name,
                           l.ebpf_error);
    }
  }
  return out;
}

}  // namespace preforkd::ctl
