// GET /metrics as text: names, types, units and escaping, from a status snapshot.

#include <preforkd/core/metrics_text.hpp>

#include <catch2/catch.hpp>

#include <limits>
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
        "# HELP preforkd_build_info The running preforkd's version; always 1.\n"
        "# TYPE preforkd_build_info gauge\n"
        "preforkd_build_info{version=\"0.1.0\"} 1\n");
  CHECK(family(text, "preforkd_worker_pid") ==
        "# HELP preforkd_worker_pid Process id of the slot's worker; -1 while the slot has no process.\n"
        "# TYPE preforkd_worker_pid gauge\n"
        "preforkd_worker_pid{slot=\"0\"} 4122\n"
        "preforkd_worker_pid{slot=\"1\"} -1\n");
  CHECK(family(text, "preforkd_worker_restarts_total") ==
        "# HELP preforkd_worker_restarts_total Processes started in the slot after its first one.\n"
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
        "# HELP preforkd_listener_info A listening address; always 1.\n"
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
  CHECK(family(text, "preforkd_worker_uptime_seconds").find("preforkd_worker_uptime_seconds{slot=\"0\"} 192\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_worker_rss_bytes").find("preforkd_worker_rss_bytes{slot=\"0\"} 12897485\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_master_uptime_seconds").find("preforkd_master_uptime_seconds 11532.5\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_master_rss_bytes").find("preforkd_master_rss_bytes 6553600\n") != std::string::npos);
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

TEST_CASE("metrics: values as Prometheus parses them", "[metrics]") {
  const std::pair<double, const char*> cases[] = {
      {0, "0"},           {-1, "-1"},       {4122, "4122"},   {1.25, "1.25"},
      {0.001, "0.001"},   {1e15, "1000000000000000"},        {12897485, "12897485"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},     {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
  };
  for (const auto& [value, text] : cases) {
    INFO(value);
    CHECK(metrics::format_value(value) == text);
  }
}

TEST_CASE("metrics: a numeric field added to the status model is exported by its key", "[metrics]") {
  // Fields of other issues (crashes, replacements by reason, PSS) flow in without a change
  // here: the renderer reads the status document, not a fixed list.
  StatusSnapshot s = sample();
  s.workers.resize(1);
  s.listeners.resize(1);
  nlohmann::json doc = s;
  CHECK(metrics::render(doc) == metrics::render(s));
  doc["workers"][0]["crashes"] = 3;
  doc["workers"][0]["replacements"] = {{"memory", 2}, {"lifetime", 1}};
  doc["workers"][0]["pss_bytes"] = 4096;
  doc["workers"][0]["sample_ms"] = 1500;
  doc["workers"][0]["pinned"] = true;
  doc["workers"][0]["cpus"] = {0, 1};                // arrays are not numbers: left out
  doc["listeners"][0]["refused"] = 7;
  doc["master"]["memory_percent"] = 50;
  const std::string text = metrics::render(doc);
  INFO(text);
  CHECK(family(text, "preforkd_worker_crashes_total") ==
        "# HELP preforkd_worker_crashes_total The status field workers[].crashes (preforkctl status --json).\n"
        "# TYPE preforkd_worker_crashes_total counter\n"
        "preforkd_worker_crashes_total{slot=\"0\"} 3\n");
  CHECK(family(text, "preforkd_worker_replacements_total") ==
        "# HELP preforkd_worker_replacements_total The status field workers[].replacements (preforkctl status "
        "--json).\n"
        "# TYPE preforkd_worker_replacements_total counter\n"
        "preforkd_worker_replacements_total{slot=\"0\",reason=\"lifetime\"} 1\n"
        "preforkd_worker_replacements_total{slot=\"0\",reason=\"memory\"} 2\n");
  CHECK(family(text, "preforkd_worker_pss_bytes").find("preforkd_worker_pss_bytes{slot=\"0\"} 4096\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_worker_sample_seconds").find("preforkd_worker_sample_seconds{slot=\"0\"} 1.5\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_worker_pinned").find("preforkd_worker_pinned{slot=\"0\"} 1\n") != std::string::npos);
  CHECK(text.find("cpus") == std::string::npos);
  CHECK(family(text, "preforkd_listener_refused_total")
            .find("# TYPE preforkd_listener_refused_total counter\npreforkd_listener_refused_total{listener=\"http\"} 7\n") !=
        std::string::npos);
  CHECK(family(text, "preforkd_master_memory_ratio").find("preforkd_master_memory_ratio 0.5\n") != std::string::npos);
  CHECK(metrics::name_part("pss-bytes.x") == "pss_bytes_x");
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
        "preforkd_listener_steered_total{listener=\"" + s.listeners[0].name + "\",reason=\"busy\"} 3\n"
        "preforkd_listener_steered_total{listener=\"" + s.listeners[0].name + "\",reason=\"hash\"} 0\n"
        "preforkd_listener_steered_total{listener=\"" + s.listeners[0].name + "\",reason=\"waiting\"} 120\n");
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
        "1; 0 when the master's sampler does (preforkd.ebpf = \"off\", or the program failed: see "
        "listeners[].ebpf_error in status).\n"
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
