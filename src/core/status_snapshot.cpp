#include <preforkd/core/status_snapshot.hpp>

#include <preforkd/core/control_reply.hpp>

#include "control_fields.hpp"

#include <cstdint>
#include <string>

namespace preforkd::control {

using nlohmann::json;
using detail::without_tag;

void to_json(json& j, const MasterStatus& v) {
  j = json{{"pid", v.pid},
           {"version", v.version},
           {"config", v.config},
           {"generation", v.generation},
           {"uptime_s", v.uptime_s},
           {"start_unix_time", v.start_unix_time},
           {"workers_ready", v.workers_ready},
           {"workers_total", v.workers_total},
           {"notify_status", v.notify_status},
           {"rss_bytes", v.rss_bytes},
           {"reloads", v.reloads},
           {"reload_failures", v.reload_failures},
           {"rollbacks", v.rollbacks}};
}

void to_json(json& j, const LastExitInfo& v) {
  j = json{{"text", v.text},           {"code", v.code},   {"signal", v.signal},
           {"unix_time", v.unix_time}, {"ago_s", v.ago_s}, {"cause", v.cause}};
}

void to_json(json& j, const WorkerStatus& v) {
  j = json{{"slot", v.slot},
           {"pid", v.pid},
           {"state", v.state},
           {"generation", v.generation},
           {"restarts", v.restarts},
           {"uptime_s", v.uptime_s},
           {"start_unix_time", v.start_unix_time},
           {"rss_bytes", v.rss_bytes},
           {"cpu_percent", v.cpu_percent},
           {"last_exit", v.last_exit ? json(*v.last_exit) : json(nullptr)},
           {"notify_status", v.notify_status},
           {"activity", v.activity},
           {"queued", v.queued},
           {"pss_bytes", v.pss_bytes},
           {"uss_bytes", v.uss_bytes},
           {"processes", v.processes},
           {"cgroup", v.cgroup},
           {"crashes", v.crashes},
           {"replacements", v.replacements},
           {"replaced_for", v.replaced_for},
           {"cpus", v.cpus},
           {"cpu_s", v.cpu_s},
           {"recycle_in_s", v.recycle_in_s},
           {"recycled", v.recycled}};
}

void to_json(json& j, const ListenerStatus& v) {
  j = json{{"name", v.name}, {"address", v.address}, {"mode", v.mode}, {"balance", v.balance},
           {"balanced_by", v.balanced_by}, {"ebpf_error", v.ebpf_error},
           {"queue_depth", v.queue_depth}, {"defer_accept_s", v.defer_accept_s}, {"fastopen", v.fastopen},
           {"refusing", v.refusing},       {"refused_total", v.refused_total},
           {"keep_alive", v.keep_alive},   {"keep_alive_time_s", v.keep_alive_time_s},
           {"keep_alive_interval_s", v.keep_alive_interval_s}, {"keep_alive_probes", v.keep_alive_probes},
           {"receive_buffer", v.receive_buffer}, {"send_buffer", v.send_buffer},
           {"no_delay", v.no_delay},       {"free_bind", v.free_bind},
           {"bind_ipv6_only", v.bind_ipv6_only}, {"bind_to_device", v.bind_to_device},
           {"non_blocking", v.non_blocking}};
  if (!v.steered.empty()) j["steered"] = v.steered;
}

MemorySummary summarize_memory(const std::vector<WorkerStatus>& workers) {
  MemorySummary m;
  for (const WorkerStatus& w : workers) {
    if (w.pid <= 0) continue;
    ++m.workers;
    m.rss_bytes += w.rss_bytes;
    m.pss_bytes += w.pss_bytes;
    m.uss_bytes += w.uss_bytes;
  }
  m.shared_bytes = m.pss_bytes > m.uss_bytes ? m.pss_bytes - m.uss_bytes : 0;
  return m;
}

void to_json(json& j, const MemorySummary& v) {
  j = json{{"workers", v.workers},
           {"rss_bytes", v.rss_bytes},
           {"pss_bytes", v.pss_bytes},
           {"uss_bytes", v.uss_bytes},
           {"shared_bytes", v.shared_bytes},
           {"master_rss_bytes", v.master_rss_bytes},
           {"master_pss_bytes", v.master_pss_bytes},
           {"master_uss_bytes", v.master_uss_bytes}};
}

void to_json(json& j, const StatusSnapshot& v) {
  j = json{{"master", v.master}, {"workers", v.workers}, {"listeners", v.listeners}, {"memory", v.memory},
           {"pool", v.pool}};
}

// The fields the contract names are required; the others default, so an older or newer
// peer still reads the document.
void from_json(const json& j, MasterStatus& v) {
  j.at("pid").get_to(v.pid);
  j.at("version").get_to(v.version);
  j.at("config").get_to(v.config);
  j.at("generation").get_to(v.generation);
  j.at("uptime_s").get_to(v.uptime_s);
  v.start_unix_time = j.value("start_unix_time", 0.0);
  v.workers_ready = j.value("workers_ready", 0);
  v.workers_total = j.value("workers_total", 0);
  v.notify_status = j.value("notify_status", std::string());
  v.rss_bytes = j.value("rss_bytes", std::uint64_t{0});
  v.reloads = j.value("reloads", 0);
  v.reload_failures = j.value("reload_failures", 0);
  v.rollbacks = j.value("rollbacks", 0);
}

void from_json(const json& j, LastExitInfo& v) {
  j.at("text").get_to(v.text);
  v.code = j.value("code", -1);
  v.signal = j.value("signal", 0);
  v.unix_time = j.value("unix_time", 0.0);
  v.ago_s = j.value("ago_s", 0.0);
  v.cause = j.value("cause", std::string());
}

void from_json(const json& j, WorkerStatus& v) {
  j.at("slot").get_to(v.slot);
  j.at("pid").get_to(v.pid);
  j.at("state").get_to(v.state);
  j.at("restarts").get_to(v.restarts);
  j.at("uptime_s").get_to(v.uptime_s);
  v.start_unix_time = j.value("start_unix_time", 0.0);
  j.at("rss_bytes").get_to(v.rss_bytes);
  j.at("cpu_percent").get_to(v.cpu_percent);
  const json& last = j.at("last_exit");
  if (last.is_null()) {
    v.last_exit.reset();
  } else {
    v.last_exit = last.get<LastExitInfo>();
  }
  v.generation = j.value("generation", 0);
  v.notify_status = j.value("notify_status", std::string());
  v.activity = j.value("activity", std::string("unknown"));
  v.queued = j.value("queued", 0);
  v.pss_bytes = j.value("pss_bytes", std::uint64_t{0});
  v.uss_bytes = j.value("uss_bytes", std::uint64_t{0});
  v.processes = j.value("processes", 0);
  v.cgroup = j.value("cgroup", std::string());
  v.crashes = j.value("crashes", 0);
  v.replacements = j.value("replacements", 0);
  v.replaced_for = j.value("replaced_for", std::map<std::string, int>());
  v.cpus = j.value("cpus", std::string());
  v.cpu_s = j.value("cpu_s", 0.0);
  v.recycle_in_s = j.value("recycle_in_s", -1.0);
  v.recycled = j.value("recycled", std::string());
}

void from_json(const json& j, ListenerStatus& v) {
  j.at("name").get_to(v.name);
  j.at("address").get_to(v.address);
  j.at("mode").get_to(v.mode);
  v.balance = j.value("balance", std::string());
  v.balanced_by = j.value("balanced_by", std::string());
  v.ebpf_error = j.value("ebpf_error", std::string());
  v.steered = j.value("steered", std::map<std::string, std::uint64_t>());
  v.queue_depth = j.value("queue_depth", std::vector<int>());
  v.defer_accept_s = j.value("defer_accept_s", 0);
  v.fastopen = j.value("fastopen", 0);
  v.refusing = j.value("refusing", false);
  v.refused_total = j.value("refused_total", std::uint64_t{0});
  v.keep_alive = j.value("keep_alive", false);
  v.keep_alive_time_s = j.value("keep_alive_time_s", 0);
  v.keep_alive_interval_s = j.value("keep_alive_interval_s", 0);
  v.keep_alive_probes = j.value("keep_alive_probes", 0);
  v.receive_buffer = j.value("receive_buffer", std::int64_t{0});
  v.send_buffer = j.value("send_buffer", std::int64_t{0});
  v.no_delay = j.value("no_delay", false);
  v.free_bind = j.value("free_bind", false);
  v.bind_ipv6_only = j.value("bind_ipv6_only", std::string());
  v.bind_to_device = j.value("bind_to_device", std::string());
  v.non_blocking = j.value("non_blocking", false);
}

void from_json(const json& j, MemorySummary& v) {
  v.workers = j.value("workers", 0);
  v.rss_bytes = j.value("rss_bytes", std::uint64_t{0});
  v.pss_bytes = j.value("pss_bytes", std::uint64_t{0});
  v.uss_bytes = j.value("uss_bytes", std::uint64_t{0});
  v.shared_bytes = j.value("shared_bytes", std::uint64_t{0});
  v.master_rss_bytes = j.value("master_rss_bytes", std::uint64_t{0});
  v.master_pss_bytes = j.value("master_pss_bytes", std::uint64_t{0});
  v.master_uss_bytes = j.value("master_uss_bytes", std::uint64_t{0});
}

void from_json(const json& j, StatusSnapshot& v) {
  j.at("master").get_to(v.master);
  j.at("workers").get_to(v.workers);
  j.at("listeners").get_to(v.listeners);
  // Optional: an older master sends none.
  if (const auto m = j.find("memory"); m != j.end() && m->is_object()) {
    v.memory = m->get<MemorySummary>();
  } else {
    v.memory = summarize_memory(v.workers);
  }
  v.pool = j.contains("pool") && j.at("pool").is_object() ? j.at("pool").get<PoolStatus>() : PoolStatus{};
}

json make_status_reply(const StatusSnapshot& snapshot) { return make_ok(json(snapshot)); }

Result<StatusSnapshot> parse_status(const json& reply) {
  if (const auto ok = reply.find("ok"); ok != reply.end() && ok->is_boolean() && !ok->get<bool>()) {
    return Error{reply.value("error", std::string("unknown error"))};
  }
  try {
    return reply.get<StatusSnapshot>();
  } catch (const json::exception& e) {
    return Error{"malformed status: " + without_tag(e.what())};
  }
}

}  // namespace preforkd::control
