// GET /metrics as text: names, types, units and escaping, from a status snapshot.

#include <preforkd/core/metrics_text.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>

using namespace preforkd;
using namespace preforkd::control;

namespace {

StatusSnapshot sample() {
  StatusSnapshot s;
  s.master.pid = 4121;
  s.master.version = "0.1.0";
  s.master.config = "/etc/preforkd/app.toml";
  s.master.generation = 2;
  s.master.uptime_s = 11532.5;
  s.master.start_unix_time = 1'700'000'000.25;
  s.master.workers_ready = 1;
  s.master.workers_total = 2;
  s.master.rss_bytes = 6'553'600;
  s.master.reloads = 3;
  s.master.reload_failures = 1;
  s.master.rollbacks = 1;
  WorkerStatus a;
  a.slot = 0;
  a.pid = 4122;
  a.state = "ready";
  a.generation = 2;
  a.restarts = 0;
  a.uptime_s = 192;
  a.start_unix_time = 1'700'011'340.5;
  a.rss_bytes = 12'897'485;
  a.cpu_percent = 54;
  a.cpu_s = 1.25;
  a.activity = "waiting";
  WorkerStatus b;
  b.slot = 1;
  b.pid = -1;
  b.state = "backoff";
  b.generation = 2;
  b.restarts = 5;
  b.last_exit = LastExitInfo{"exited on signal 9", -1, 9, 1'700'000'000.5, 2};
  s.workers = {a, b};
  s.listeners = {{"http", "127.0.0.1:8080", "reuseport", {0, 17}, "load"},
                 {"admin", "unix:/run/app.sock", "shared", {-1}, ""}};
  return s;
}

// The lines of one metric family: its HELP, TYPE and samples, as they appear.
std::string family(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line, out;
  for (std::string l; std::getline(in, l);) {
    const bool comment = l.starts_with("# HELP " + name + " ") || l.starts_with("# TYPE " + name + " ");
    const bool sample = l.starts_with(name + "{") || l.starts_with(name + " ");
    if (comment || sample) out += l + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("metrics: golden families from a status snapshot", "[metrics]") {
  const std::string text = metrics::render(sample());
  INFO(text);
  CHECK(family(text, "preforkd_build_info") ==
        "# HELP preforkd_build_info The running preforkd's version, as a label; always 1.\n"
        "# TYPE preforkd_build_info gauge\n"
        "preforkd_build_info{version=\"0.1.0\"} 1\n");
  CHECK(family(text, "preforkd_worker_pid") ==
        "# HELP preforkd_worker_pid Process id of the slot's worker; -1 while the slot has no process.\n"
        "# TYPE preforkd_worker_pid gauge\n"
        "preforkd_worker_pid{slot=\"0\"} 4122\n"
        "preforkd_worker_pid{slot=\"1\"} -1\n");
  CHECK(family(text, "preforkd_worker_restarts_total") ==
        "# HELP preforkd_worker_restarts_total Processes started in the slot after its first one, for any reason.\n"
        "# TYPE preforkd_worker_restarts_total counter\n"
        "preforkd_worker_restarts_total{slot=\"0\"} 0\n"
        "preforkd_worker_restarts_total{slot=\"1\"} 5\n");
  CHECK(family(text, "preforkd_worker_state") ==
        "# HELP preforkd_worker_state The slot's worker state: 1 for the current one (starting, ready, stopping, "
        "backoff, failed, stopped).\n"
        "# TYPE preforkd_worker_state gauge\n"
        "preforkd_worker_state{slot=\"0\",state=\"starting\"} 0\n"
        "preforkd_worker_state{slot=\"0\",state=\"ready\"} 1\n"
        "preforkd_worker_state{slot=\"0\",state=\"stopping\"} 0\n"
        "preforkd_worker_state{slot=\"0\",state=\"backoff\"} 0\n"
        "preforkd_worker_state{slot=\"0\",state=\"failed\"} 0\n"
        "preforkd_worker_state{slot=\"0\",state=\"stopped\"} 0\n"
        "preforkd_worker_state{slot=\"1\",state=\"starting\"} 0\n"
        "preforkd_worker_state{slot=\"1\",state=\"ready\"} 0\n"
        "preforkd_worker_state{slot=\"1\",state=\"stopping\"} 0\n"
        "preforkd_worker_state{slot=\"1\",state=\"backoff\"} 1\n"
        "preforkd_worker_state{slot=\"1\",state=\"failed\"} 0\n"
        "preforkd_worker_state{slot=\"1\",state=\"stopped\"} 0\n");
  CHECK(family(text, "preforkd_listener_queued_connections") ==
        "# HELP preforkd_listener_queued_connections Connections waiting in the listener's accept queue: one per "
        "slot (reuseport) or one (shared).\n"
        "# TYPE preforkd_listener_queued_connections gauge\n"
        "preforkd_listener_queued_connections{listener=\"http\",slot=\"0\"} 0\n"
        "preforkd_listener_queued_connections{listener=\"http\",slot=\"1\"} 17\n");
  CHECK(family(text, "preforkd_listener_info") ==
        "# HELP preforkd_listener_info A listening address with its mode and balancing, as labels; always 1.\n"
        "# TYPE preforkd_listener_info gauge\n"
        "preforkd_listener_info{listener=\"http\",address=\"127.0.0.1:8080\",mode=\"reuseport\",balance=\"load\"} 1\n"
        "preforkd_listener_info{listener=\"admin\",address=\"unix:/run/app.sock\",mode=\"shared\",balance=\"\"} 1\n");
}

TEST_CASE("metrics: units are base units and counters end in _total", "[metrics]") {
  const std::string text = metrics::render(sample());
  INFO(text);
  CHECK(family(text, "preforkd_worker_cpu_seconds_total").find("# TYPE preforkd_worker_cpu_seconds_total counter\n"
                                                                "preforkd_worker_cpu_seconds_total{slot=\"0\"} 1.25\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_worker_cpu_ratio").find("preforkd_worker_cpu_ratio{slot=\"0\"} 0.54\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_worker_start_time_seconds") ==
        "# HELP preforkd_worker_start_time_seconds When the slot's current process started, in seconds since the "
        "epoch; absent while it has none.\n"
        "# TYPE preforkd_worker_start_time_seconds gauge\n"
        "preforkd_worker_start_time_seconds{slot=\"0\"} 1700011340.5\n");
  CHECK(family(text, "preforkd_worker_rss_bytes").find("preforkd_worker_rss_bytes{slot=\"0\"} 12897485\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_start_time_seconds").find("gauge\npreforkd_start_time_seconds 1700000000.25\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_master_reloads_total").find("# TYPE preforkd_master_reloads_total counter\n"
                                                            "preforkd_master_reloads_total 3\n") != std::string::npos);
  CHECK(family(text, "preforkd_master_rollbacks_total").find("preforkd_master_rollbacks_total 1\n") != std::string::npos);
  CHECK(family(text, "preforkd_master_generation").find("preforkd_master_generation 2\n") != std::string::npos);
  CHECK(family(text, "preforkd_workers_desired").find("# TYPE preforkd_workers_desired gauge\n"
                                                       "preforkd_workers_desired 2\n") != std::string::npos);
  CHECK(family(text, "preforkd_worker_last_exit_timestamp_seconds")
            .find("preforkd_worker_last_exit_timestamp_seconds{slot=\"1\"} 1700000000.5\n") != std::string::npos);
  CHECK(family(text, "preforkd_worker_last_exit_signal").find("preforkd_worker_last_exit_signal{slot=\"1\"} 9\n") !=
        std::string::npos);
  // Left out: the slot is a label, ago_s changes with every scrape, -1 queue depths are unknown.
  CHECK(text.find("preforkd_worker_slot") == std::string::npos);
  CHECK(text.find("ago") == std::string::npos);
  CHECK(text.find("listener=\"admin\",slot") == std::string::npos);
  CHECK(family(text, "preforkd_listener_queued_connections").find("admin") == std::string::npos);
  // No gauge ends in _total; every counter does.
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.starts_with("# TYPE ")) continue;
    INFO(l);
    const bool counter = l.ends_with(" counter");
    const std::string name = l.substr(7, l.find(' ', 7) - 7);
    CHECK(name.ends_with("_total") == counter);
    CHECK(name.starts_with("preforkd_"));
  }
}

TEST_CASE("metrics: every family has one HELP and one TYPE then all its samples together", "[metrics]") {
  const std::string text = metrics::render(sample());
  std::set<std::string> seen;
  std::string current;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    INFO(l);
    REQUIRE_FALSE(l.empty());
    if (l.starts_with("# HELP ")) {
      current = l.substr(7, l.find(' ', 7) - 7);
      CHECK(seen.insert(current).second);
      continue;
    }
    if (l.starts_with("# TYPE ")) {
      CHECK(l.substr(7, l.find(' ', 7) - 7) == current);
      continue;
    }
    const std::string name = l.substr(0, l.find_first_of("{ "));
    CHECK(name == current);
  }
  CHECK(text.ends_with("\n"));
}

TEST_CASE("metrics: label values and help texts are escaped", "[metrics]") {
  CHECK(metrics::escape_label_value(R"(a"b\c)") == R"(a\"b\\c)");
  CHECK(metrics::escape_label_value("line\nbreak") == "line\\nbreak");
  CHECK(metrics::escape_label_value("plain ümlaut") == "plain ümlaut");
  CHECK(metrics::escape_help("a\\b\nc \"quoted\"") == "a\\\\b\\nc \"quoted\"");

  StatusSnapshot s = sample();
  s.master.version = "1.0 \"beta\"\\x\n";
  s.listeners[0].name = "we\"ird";
  const std::string text = metrics::render(s);
  CHECK(text.find("preforkd_build_info{version=\"1.0 \\\"beta\\\"\\\\x\\n\"} 1\n") != std::string::npos);
  CHECK(text.find("preforkd_listener_info{listener=\"we\\\"ird\",") != std::string::npos);
}

// Every numeric leaf of the status document, as "master.x", "workers[].x", "listeners[].x".
void numeric_paths(const nlohmann::json& j, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& [key, value] : j.items()) {
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    // A map of counts inside a worker or listener (replaced_for, steered), not a group of fields (memory).
    const bool counts = prefix.ends_with("[]") && value.is_object() && !value.empty() &&
                        std::all_of(value.begin(), value.end(), [](const nlohmann::json& v) { return v.is_number(); });
    if (counts) {
      out.insert(path);
    } else if (value.is_object()) {
      numeric_paths(value, path, out);
    } else if (value.is_array() && !value.empty() && value[0].is_object()) {
      for (const auto& item : value) numeric_paths(item, path + "[]", out);
    } else if (value.is_array() && !value.empty() && value[0].is_number()) {
      out.insert(path);  // queue_depth
    } else if (value.is_number() || value.is_boolean()) {
      out.insert(path);
    }
  }
}

TEST_CASE("metrics: every numeric status field is exported or left out on purpose", "[metrics]") {
  StatusSnapshot s = sample();
  s.workers[0].replaced_for = {{"reload", 1}};
  s.listeners[0].steered = {{"waiting", 1}};
  std::set<std::string> paths;
  numeric_paths(nlohmann::json(s), "", paths);
  REQUIRE(paths.contains("workers[].last_exit.code"));
  std::set<std::string> known;
  for (const auto f : metrics::exported_fields()) known.insert(std::string(f));
  for (const auto f : metrics::left_out_fields()) CHECK(known.insert(std::string(f)).second);
  for (const auto& p : paths) {
    INFO("status field " << p << ": export it in metrics_text.cpp (with a help text) or list it as left out");
    CHECK(known.contains(p));
  }
}

TEST_CASE("metrics: every counter is typed counter and named _total and every reason shows at 0 before any event",
          "[metrics]") {
  StatusSnapshot s;
  s.master.pid = 10;
  s.master.version = "0.1.0";
  WorkerStatus w;
  w.slot = 0;
  w.pid = 11;
  w.state = "starting";
  s.workers = {w};
  s.listeners = {{"http", "127.0.0.1:8080", "reuseport", {0}, "load", "ebpf"}};
  const std::string text = metrics::render(s);
  INFO(text);
  CHECK(family(text, "preforkd_worker_replaced_total") ==
        "# HELP preforkd_worker_replaced_total Planned replacements of the slot's worker, by reason: reload, restart, "
        "scale, or recycled for memory or lifetime.\n"
        "# TYPE preforkd_worker_replaced_total counter\n"
        "preforkd_worker_replaced_total{slot=\"0\",reason=\"reload\"} 0\n"
        "preforkd_worker_replaced_total{slot=\"0\",reason=\"restart\"} 0\n"
        "preforkd_worker_replaced_total{slot=\"0\",reason=\"scale\"} 0\n"
        "preforkd_worker_replaced_total{slot=\"0\",reason=\"memory\"} 0\n"
        "preforkd_worker_replaced_total{slot=\"0\",reason=\"lifetime\"} 0\n");
  CHECK(family(text, "preforkd_listener_steered_total").find("reason=\"hash\"} 0\n") != std::string::npos);
  CHECK(family(text, "preforkd_listener_steered_total").find("reason=\"busy\"} 0\n") != std::string::npos);
  CHECK(family(text, "preforkd_listener_steered_total").find("reason=\"waiting\"} 0\n") != std::string::npos);
  for (const char* name : {"preforkd_worker_crashes_total", "preforkd_worker_restarts_total",
                           "preforkd_listener_refused_total", "preforkd_master_reloads_total",
                           "preforkd_master_reload_failures_total", "preforkd_master_rollbacks_total"}) {
    INFO(name);
    CHECK(family(text, name).find("# TYPE " + std::string(name) + " counter\n") != std::string::npos);
    CHECK(family(text, name).ends_with(" 0\n"));
  }
  // No per-reason gauges, no ages, no JSON field names in the help texts.
  CHECK(text.find("replaced_for") == std::string::npos);
  CHECK(text.find("uptime") == std::string::npos);
  CHECK(text.find("status field") == std::string::npos);
  CHECK(text.find("[]") == std::string::npos);
  CHECK(text.find("\npreforkd_listener_refused{") == std::string::npos);
  // Every sample of every counter ends in _total; no gauge does.
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.starts_with("# TYPE ")) continue;
    INFO(l);
    const std::string name = l.substr(7, l.find(' ', 7) - 7);
    CHECK(name.ends_with("_total") == l.ends_with(" counter"));
  }
}

TEST_CASE("metrics: the master's process metrics as the client libraries name them", "[metrics]") {
  metrics::ProcessMetrics p;
  p.cpu_seconds = 1.5;
  p.resident_memory_bytes = 8'736'768;
  p.virtual_memory_bytes = 13'750'272;
  p.open_fds = 32;
  p.max_fds = 20000;
  p.start_time_seconds = 1'796'595'261.46;
  const std::string text = metrics::render(sample(), p);
  INFO(text);
  CHECK(family(text, "process_cpu_seconds_total") ==
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\n"
        "process_cpu_seconds_total 1.5\n");
  CHECK(family(text, "process_resident_memory_bytes").ends_with("gauge\nprocess_resident_memory_bytes 8736768\n"));
  CHECK(family(text, "process_virtual_memory_bytes").ends_with("gauge\nprocess_virtual_memory_bytes 13750272\n"));
  CHECK(family(text, "process_open_fds").ends_with("gauge\nprocess_open_fds 32\n"));
  CHECK(family(text, "process_max_fds").ends_with("gauge\nprocess_max_fds 20000\n"));
  CHECK(family(text, "process_start_time_seconds").ends_with("gauge\nprocess_start_time_seconds 1796595261.46\n"));
  // A figure that could not be read is left out, not shown as 0.
  p.open_fds.reset();
  CHECK(metrics::render(sample(), p).find("process_open_fds") == std::string::npos);
}

TEST_CASE("metrics: the eBPF balancer's counts are one counter by reason", "[metrics]") {
  StatusSnapshot s = sample();
  s.listeners.resize(1);
  s.listeners[0].balance = "load";
  s.listeners[0].balanced_by = "ebpf";
  s.listeners[0].steered = {{"waiting", 120}, {"busy", 3}, {"hash", 0}};
  const std::string text = metrics::render(s);
  CHECK(family(text, "preforkd_listener_steered_total") ==
        "# HELP preforkd_listener_steered_total New connections the eBPF balancer sent to a waiting worker, to a busy "
        "one (every worker was busy), or left to the kernel's hash (no live slot), by reason.\n"
        "# TYPE preforkd_listener_steered_total counter\n"
        "preforkd_listener_steered_total{listener=\"" + s.listeners[0].name + "\",reason=\"waiting\"} 120\n"
        "preforkd_listener_steered_total{listener=\"" + s.listeners[0].name + "\",reason=\"busy\"} 3\n"
        "preforkd_listener_steered_total{listener=\"" + s.listeners[0].name + "\",reason=\"hash\"} 0\n");
  // The status round trip keeps them.
  const nlohmann::json doc = s;
  CHECK(doc["listeners"][0]["balanced_by"] == "ebpf");
  CHECK(doc.get<StatusSnapshot>() == s);
}

TEST_CASE("metrics: whether the eBPF balancer balances each load listener as 1 or 0", "[metrics]") {
  StatusSnapshot s = sample();
  s.listeners.resize(2);
  s.listeners[0].balance = "load";
  s.listeners[0].balanced_by = "ebpf";
  s.listeners[1].name = "api";
  s.listeners[1].mode = "reuseport";
  s.listeners[1].balance = "load";
  s.listeners[1].balanced_by = "sampler";
  s.listeners[1].ebpf_error = "failed to add to the eBPF steering map 'socket of slot 2': out of memory";
  CHECK(family(metrics::render(s), "preforkd_listener_ebpf") ==
        "# HELP preforkd_listener_ebpf Whether the kernel's eBPF program balances the listener (balance = \"load\"): "
        "1; 0 while the master's sampler does, because ebpf = \"off\" or the program failed (status says why).\n"
        "# TYPE preforkd_listener_ebpf gauge\n"
        "preforkd_listener_ebpf{listener=\"http\"} 1\n"
        "preforkd_listener_ebpf{listener=\"api\"} 0\n");
  // A listener nothing balances on load (hash, shared) has no series.
  s.listeners[1].balance = "hash";
  s.listeners[1].balanced_by = "";
  s.listeners[1].ebpf_error = "";
  CHECK(family(metrics::render(s), "preforkd_listener_ebpf").find("api") == std::string::npos);
  // The reason round-trips through the status document.
  s.listeners[0].balanced_by = "sampler";
  s.listeners[0].ebpf_error = "eBPF steering: cannot load the program: out of memory";
  const nlohmann::json doc = s;
  CHECK(doc["listeners"][0]["ebpf_error"] == "eBPF steering: cannot load the program: out of memory");
  CHECK(doc.get<StatusSnapshot>() == s);
}
