#include <preforkd/core/metrics_text.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <vector>

namespace preforkd::metrics {
namespace {

using nlohmann::json;

enum class Type { gauge, counter };

const char* type_name(Type t) {
  switch (t) {
    case Type::gauge: return "gauge";
    case Type::counter: return "counter";
  }
  return "untyped";
}

// Status fields that count events since something started: counters, named `_total`.
// Add a key here when a new counting field joins the status model.
constexpr std::array<std::string_view, 11> counter_keys{"restarts", "crashes",         "replacements", "recycles",
                                                        "stalls",   "refused",         "reloads",      "reload_failures",
                                                        "rollbacks", "cpu_s",          "steered"};

// Fields with a name and help chosen by hand ("" name: not exported). Keyed by scope and
// dotted JSON path.
struct Named {
  std::string_view path;  // "worker.pid"
  std::string_view name;  // the full metric name, "" to leave it out
  std::string_view help;
  double scale = 1;  // the value times this: percent to ratio
};

constexpr std::array<Named, 23> named_fields{{
    {"master.pid", "preforkd_master_pid", "Process id of the master."},
    {"master.generation", "preforkd_master_generation",
     "Configuration generation: successful reloads since start (PREFORK_GENERATION of new workers)."},
    {"master.uptime_s", "preforkd_master_uptime_seconds", "Seconds since the master started."},
    {"master.workers_ready", "preforkd_workers_ready", "Worker slots whose worker is ready."},
    {"master.workers_total", "preforkd_workers_desired", "Worker slots the master keeps (worker.count, or the last scale)."},
    {"master.rss_bytes", "preforkd_master_rss_bytes", "Resident memory of the master process."},
    {"master.reloads", "preforkd_master_reloads_total", "Reloads asked for (control socket or SIGHUP), done or failed."},
    {"master.reload_failures", "preforkd_master_reload_failures_total",
     "Reloads that failed: a bad config, a bind error or a rollback."},
    {"master.rollbacks", "preforkd_master_rollbacks_total",
     "Rolling updates (reload, restart) rolled back because a new worker never became ready."},
    {"worker.slot", "", ""},
    {"worker.pid", "preforkd_worker_pid", "Process id of the slot's worker; -1 while the slot has no process."},
    {"worker.generation", "preforkd_worker_generation", "Configuration generation the slot's worker was started from."},
    {"worker.restarts", "preforkd_worker_restarts_total", "Processes started in the slot after its first one."},
    {"worker.uptime_s", "preforkd_worker_uptime_seconds", "Seconds since the slot's current process started; 0 without one."},
    {"worker.rss_bytes", "preforkd_worker_rss_bytes",
     "Resident memory of the worker process; shared pages count in every process that maps them."},
    {"worker.cpu_percent", "preforkd_worker_cpu_ratio",
     "CPU used by the worker over the last sampling interval (1 = one CPU busy).", 0.01},
    {"worker.cpu_s", "preforkd_worker_cpu_seconds_total",
     "CPU time (user + system) of the slot's current process, as last sampled; restarts from 0 with a new process."},
    {"worker.queued", "preforkd_worker_queued_connections",
     "Connections waiting in the slot's accept queues of balanced listeners."},
    {"worker.last_exit.code", "preforkd_worker_last_exit_code", "Exit status of the slot's last exited process; -1 if killed by a signal."},
    {"worker.last_exit.signal", "preforkd_worker_last_exit_signal", "Signal that killed the slot's last exited process; 0 if it exited."},
    {"worker.last_exit.unix_time", "preforkd_worker_last_exit_timestamp_seconds",
     "When the slot's last process exited, in seconds since the epoch."},
    {"worker.last_exit.ago_s", "", ""},  // unix_time says it, and a scrape's age changes it
    {"listener.steered", "preforkd_listener_steered_total",
     "New connections the eBPF balancer sent to a waiting worker, to a busy one (every worker was busy), or left "
     "to the kernel's hash (no live slot), by reason."},
}};

constexpr std::array<std::string_view, 6> worker_states{"starting", "ready", "stopping", "backoff", "failed", "stopped"};
constexpr std::array<std::string_view, 3> activities{"waiting", "busy", "unknown"};

bool is_counter_key(std::string_view key) {
  return std::find(counter_keys.begin(), counter_keys.end(), key) != counter_keys.end();
}

struct Family {
  std::string name;
  std::string help;
  Type type = Type::gauge;
  std::vector<std::string> samples;  // "{labels} value" (labels may be empty)
};

// Metric families in the order they first appear; every sample of one family is printed
// together, as the format requires.
class Families {
 public:
  void add(const std::string& name, std::string_view help, Type type, const std::string& labels, double value) {
    auto [it, fresh] = index_.try_emplace(name, families_.size());
    if (fresh) families_.push_back(Family{name, std::string(help), type, {}});
    Family& f = families_[it->second];
    if (f.type != type) return;  // two fields that map to one name: the first one wins
    f.samples.push_back(labels + ' ' + format_value(value));
  }

  [[nodiscard]] std::string text() const {
    std::string out;
    for (const Family& f : families_) {
      if (f.samples.empty()) continue;
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, escape_help(f.help), f.name, type_name(f.type));
      for (const std::string& s : f.samples) {
        out += f.name;
        out += s;
        out += '\n';
      }
    }
    return out;
  }

 private:
  std::vector<Family> families_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

std::string label(std::string_view name, std::string_view value) {
  return fmt::format("{}=\"{}\"", name, escape_label_value(value));
}

std::string labels(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    out += out.empty() ? "{" : ",";
    out += p;
  }
  return out.empty() ? out : out + "}";
}

// How one numeric field is exported.
struct Metric {
  std::string name;
  std::string help;
  Type type = Type::gauge;
  double scale = 1;
};

// The name, type and unit of a field from its key, by the rules in the header.
std::optional<Metric> metric_for(std::string_view scope, std::string_view path, std::string_view key) {
  const std::string full = std::string(scope) + "." + std::string(path);
  for (const Named& n : named_fields) {
    if (n.path != full) continue;
    if (n.name.empty()) return std::nullopt;
    return Metric{std::string(n.name), std::string(n.help), is_counter_key(key) ? Type::counter : Type::gauge, n.scale};
  }
  Metric m;
  std::string base = name_part(path);
  const auto ends = [&](std::string_view suffix) {
    if (!base.ends_with(suffix)) return false;
    base.resize(base.size() - suffix.size());
    return true;
  };
  if (ends("_ms")) {
    base += "_seconds";
    m.scale = 0.001;
  } else if (ends("_s")) {
    base += "_seconds";
  } else if (ends("_percent")) {
    base += "_ratio";
    m.scale = 0.01;
  }
  m.type = is_counter_key(key) ? Type::counter : Type::gauge;
  // _total is for counters only; a gauge named so (workers_total) drops it.
  if (m.type == Type::counter && !base.ends_with("_total")) base += "_total";
  if (m.type == Type::gauge) ends("_total");
  m.name = "preforkd_" + std::string(scope) + "_" + base;
  const std::string_view where = scope == "master" ? "master." : scope == "worker" ? "workers[]." : "listeners[].";
  m.help = fmt::format("The status field {}{} (preforkctl status --json).", where, path);
  return m;
}

// Every number (and boolean) in `object`, nested objects joined with '_' in the name and '.'
// in the path; strings and arrays are left to the callers that know what they mean.
// An object of numbers under a counter key (replacements: {"memory": 2}) is one counter
// with a `reason` label.
void add_numbers(Families& out, std::string_view scope, const json& object, const std::string& labels_prefix,
                 const std::string& path_prefix = "") {
  for (const auto& [key, value] : object.items()) {
    const std::string path = path_prefix.empty() ? key : path_prefix + "." + key;
    if (value.is_object()) {
      const bool by_reason = path_prefix.empty() && is_counter_key(key) &&
                             std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_number(); });
      if (by_reason) {
        const auto m = metric_for(scope, path, key);
        if (!m) continue;
        for (const auto& [reason, n] : value.items()) {
          const std::string l = labels_prefix.empty() ? labels({label("reason", reason)})
                                                      : labels_prefix.substr(0, labels_prefix.size() - 1) + "," +
                                                            label("reason", reason) + "}";
          out.add(m->name, m->help, m->type, l, n.get<double>() * m->scale);
        }
      } else {
        add_numbers(out, scope, value, labels_prefix, path);
      }
      continue;
    }
    if (!value.is_number() && !value.is_boolean()) continue;
    const auto m = metric_for(scope, path, key);
    if (!m) continue;
    const double v = value.is_boolean() ? (value.get<bool>() ? 1.0 : 0.0) : value.get<double>();
    out.add(m->name, m->help, m->type, labels_prefix, v * m->scale);
  }
}

// One 0/1 series per possible value of a string field, so that a query can sum them.
void add_enum(Families& out, const std::string& name, std::string_view help, const std::string& slot_label,
              std::string_view label_name, const std::string& value, const auto& values) {
  bool known = false;
  for (const std::string_view v : values) {
    known = known || v == value;
    out.add(name, help, Type::gauge, labels({slot_label, label(label_name, v)}), v == value ? 1 : 0);
  }
  if (!known && !value.empty()) out.add(name, help, Type::gauge, labels({slot_label, label(label_name, value)}), 1);
}

}  // namespace

std::string escape_label_value(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Whole numbers (pids, counts, bytes) without a fraction or an exponent, up to 2^53.
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0)
    return fmt::format("{}", static_cast<long long>(value));
  return fmt::format("{}", value);
}

std::string name_part(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) c = '_';
  }
  return out;
}

std::string render(const control::StatusSnapshot& snapshot) { return render(json(snapshot)); }

std::string render(const nlohmann::json& status) {
  Families out;
  const json empty = json::object();
  const json& master = status.contains("master") && status["master"].is_object() ? status["master"] : empty;
  const json no_items = json::array();
  const json& workers = status.contains("workers") && status["workers"].is_array() ? status["workers"] : no_items;
  const json& listeners =
      status.contains("listeners") && status["listeners"].is_array() ? status["listeners"] : no_items;
  const auto text = [](const json& object, const char* key) {
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const auto slot_label = [](const json& w) {
    const auto it = w.find("slot");
    return label("slot", it != w.end() && it->is_number_integer() ? std::to_string(it->get<long long>()) : "?");
  };

  out.add("preforkd_build_info", "The running preforkd's version; always 1.", Type::gauge,
          labels({label("version", text(master, "version"))}), 1);
  add_numbers(out, "master", master, "");

  for (const json& w : workers) {
    add_enum(out, "preforkd_worker_state",
             "The slot's worker state: 1 for the current one (starting, ready, stopping, backoff, failed, stopped).",
             slot_label(w), "state", text(w, "state"), worker_states);
  }
  for (const json& w : workers) {
    add_enum(out, "preforkd_worker_activity",
             "Whether the slot's worker was last seen waiting for a connection (balanced accept): 1 for the current "
             "value.",
             slot_label(w), "activity", text(w, "activity"), activities);
  }
  for (const json& w : workers) add_numbers(out, "worker", w, labels({slot_label(w)}));

  for (const json& l : listeners) {
    out.add("preforkd_listener_info", "A listening address; always 1.", Type::gauge,
            labels({label("listener", text(l, "name")), label("address", text(l, "address")),
                    label("mode", text(l, "mode")), label("balance", text(l, "balance"))}),
            1);
  }
  for (const json& l : listeners) {
    const std::string by = text(l, "balanced_by");
    if (by.empty()) continue;  // balance = "hash", shared and unix listeners: nothing balances on load
    out.add("preforkd_listener_ebpf",
            "Whether the kernel's eBPF program balances the listener (balance = \"load\"): 1; 0 when the master's "
            "sampler does (preforkd.ebpf = \"off\", or the program failed: see listeners[].ebpf_error in status).",
            Type::gauge, labels({label("listener", text(l, "name"))}), by == "ebpf" ? 1 : 0);
  }
  for (const json& l : listeners) {
    const bool per_slot = text(l, "mode") == "reuseport";
    const auto depths = l.find("queue_depth");
    if (depths == l.end() || !depths->is_array()) continue;
    for (std::size_t i = 0; i < depths->size(); ++i) {
      const json& d = (*depths)[i];
      if (!d.is_number() || d.get<double>() < 0) continue;  // -1: unknown
      out.add("preforkd_listener_queued_connections",
              "Connections waiting in the listener's accept queue: one per slot (reuseport) or one (shared).",
              Type::gauge,
              labels({label("listener", text(l, "name")), per_slot ? label("slot", std::to_string(i)) : std::string()}),
              d.get<double>());
    }
  }
  for (const json& l : listeners) add_numbers(out, "listener", l, labels({label("listener", text(l, "name"))}));
  return out.text();
}

}  // namespace preforkd::metrics
