#include <preforkd/core/control_protocol.hpp>
#include <preforkd/core/message_text.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>

namespace preforkd::control {
namespace {

using nlohmann::json;

// Text a client sent, quoted for an error message and cut short: an error reply must not
// echo a 64 KiB request back.
// Built by appending: GCC 12 at -O3 reports a false -Werror=restrict for "'" + std::string&&.
std::string echoed(std::string_view text) {
  constexpr std::size_t max_echo = 64;
  std::size_t cut = text.size();
  if (cut > max_echo) {
    cut = max_echo;
    // Cut on a character boundary, so the message stays valid UTF-8 for the JSON reply.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  }
  // Control characters are escaped: preforkctl prints the message to a terminal, on one line.
  std::string out(1, '\'');
  out.append(one_line(text.substr(0, cut)));
  if (cut < text.size()) out.append("...");
  out.push_back('\'');
  return out;
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the tag helps no one.
std::string without_tag(const char* what) {
  std::string_view text(what);
  if (text.starts_with("[json.exception.")) {
    const auto end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return std::string(text);
}

std::optional<std::int64_t> integer(const json& j) {
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (j.is_number_integer()) return j.get<std::int64_t>();
  return std::nullopt;
}

std::optional<std::int64_t> integer_text(std::string_view text) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

Status check_scale(const ScaleTarget& t) {
  switch (t.kind) {
    case ScaleTarget::Kind::absolute:
      if (t.value < 1 || t.value > max_workers)
        return Error{"scale: count must be from 1 to " + std::to_string(max_workers) + ", got " +
                     std::to_string(t.value)};
      return Ok{};
    case ScaleTarget::Kind::delta:
      if (t.value == 0 || t.value < -max_workers || t.value > max_workers)
        return Error{"scale: delta must be from -" + std::to_string(max_workers) + " to +" +
                     std::to_string(max_workers) + " and not 0, got " + std::to_string(t.value)};
      return Ok{};
  }
  return Ok{};
}

Result<int> slot_number(std::optional<std::int64_t> v, std::string_view shown, std::string_view command = "restart") {
  if (!v || *v < 0 || *v >= max_workers)
    return Error{std::string(command) + (command == "restart" ? ": expected 'all' or slot" : ": expected slot") +
                 " numbers from 0 to " + std::to_string(max_workers - 1) +
                 ", got " + echoed(shown)};
  return static_cast<int>(*v);
}

void normalise(RestartTarget& t) {
  std::sort(t.slots.begin(), t.slots.end());
  t.slots.erase(std::unique(t.slots.begin(), t.slots.end()), t.slots.end());
}

std::optional<Request::Command> command_named(std::string_view name) {
  using C = Request::Command;
  for (const C c : {C::status, C::reload, C::scale, C::restart, C::stop, C::upgrade, C::logs}) {
    if (name == to_string(c)) return c;
  }
  return std::nullopt;
}

// Every member of a request object but "cmd" must be one the command knows.
Status check_fields(const json& j, Request::Command command, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : j.items()) {
    if (key == "cmd") continue;
    if (std::find(known.begin(), known.end(), key) == known.end())
      return Error{std::string(to_string(command)) + ": unknown field " + echoed(key)};
  }
  return Ok{};
}

Result<ScaleTarget> scale_from_json(const json& j) {
  const bool has_count = j.contains("count");
  const bool has_delta = j.contains("delta");
  if (has_count == has_delta) return Error{R"(scale: expected "count" or "delta", exactly one of them)"};
  const json& v = has_count ? j.at("count") : j.at("delta");
  const auto n = integer(v);
  const char* name = has_count ? "count" : "delta";
  if (!n) return Error{std::string("scale: \"") + name + "\" must be an integer, got " + echoed(v.dump())};
  if (*n < -max_workers || *n > max_workers) {
    return Error{std::string("scale: \"") + name + "\" is out of range, got " + std::to_string(*n)};
  }
  ScaleTarget t{has_count ? ScaleTarget::Kind::absolute : ScaleTarget::Kind::delta, static_cast<int>(*n)};
  if (auto ok = check_scale(t); !ok) return Error{ok.error()};
  return t;
}

Result<RestartTarget> restart_from_json(const json& j) {
  RestartTarget t;
  if (!j.contains("slots")) return t;
  const json& slots = j.at("slots");
  if (slots.is_string() && slots.get<std::string>() == "all") return t;
  if (!slots.is_array() || slots.empty())
    return Error{R"(restart: "slots" must be "all" or a non-empty list of slot numbers)"};
  t.all = false;
  for (const json& s : slots) {
    auto slot = slot_number(integer(s), s.dump());
    if (!slot) return Error{slot.error()};
    t.slots.push_back(*slot);
  }
  normalise(t);
  return t;
}

Status check_log_lines(std::optional<std::int64_t> n, std::string_view shown) {
  if (!n || *n < 0 || *n > max_log_lines)
    return Error{"logs: the number of lines must be from 0 to " + std::to_string(max_log_lines) + ", got " +
                 echoed(shown)};
  return Ok{};
}

Result<LogsTarget> logs_from_json(const json& j) {
  LogsTarget t;
  if (const auto lines = j.find("lines"); lines != j.end()) {
    const auto n = integer(*lines);
    if (auto ok = check_log_lines(n, lines->dump()); !ok) return Error{ok.error()};
    t.lines = static_cast<int>(*n);
  }
  if (const auto follow = j.find("follow"); follow != j.end()) {
    if (!follow->is_boolean()) return Error{R"(logs: "follow" must be true or false)"};
    t.follow = follow->get<bool>();
  }
  if (const auto slots = j.find("slots"); slots != j.end()) {
    if (!slots->is_array()) return Error{R"(logs: "slots" must be an array of slot numbers)"};
    if (slots->size() > static_cast<std::size_t>(max_workers))
      return Error{"logs: more than " + std::to_string(max_workers) + " slots"};
    for (const json& s : *slots) {
      auto slot = slot_number(integer(s), s.dump(), "logs");
      if (!slot) return Error{slot.error()};
      t.slots.push_back(*slot);
    }
  }
  std::sort(t.slots.begin(), t.slots.end());
  t.slots.erase(std::unique(t.slots.begin(), t.slots.end()), t.slots.end());
  return t;
}

}  // namespace

Result<LogsTarget> parse_logs_args(const std::vector<std::string>& args) {
  LogsTarget t;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-f" || a == "--follow") {
      t.follow = true;
    } else if (a == "-n" || a == "--lines" || a.starts_with("-n") || a.starts_with("--lines=")) {
      std::string value;
      if (a == "-n" || a == "--lines") {
        if (i + 1 == args.size()) return Error{"logs: " + a + " needs a number of lines"};
        value = args[++i];
      } else {
        value = a.starts_with("--lines=") ? a.substr(8) : a.substr(2);
      }
      const auto n = value.size() <= 9 ? integer_text(value) : std::nullopt;
      if (auto ok = check_log_lines(n, value); !ok) return Error{ok.error()};
      t.lines = static_cast<int>(*n);
    } else if (a.starts_with('-')) {
      return Error{"logs: unknown option " + echoed(a) + "; expected -f, -n N or slot numbers"};
    } else {
      auto slot = slot_number(integer_text(a), a, "logs");
      if (!slot) return Error{slot.error()};
      t.slots.push_back(*slot);
    }
  }
  std::sort(t.slots.begin(), t.slots.end());
  t.slots.erase(std::unique(t.slots.begin(), t.slots.end()), t.slots.end());
  return t;
}

Result<int> ScaleTarget::resolve(int current) const {
  const long target = kind == Kind::absolute ? value : static_cast<long>(current) + value;
  if (target < 1 || target > max_workers) {
    return Error{"scale: cannot go from " + std::to_string(current) + " to " + std::to_string(target) +
                 " workers; the count must be from 1 to " + std::to_string(max_workers)};
  }
  return static_cast<int>(target);
}

const char* to_string(Request::Command command) {
  switch (command) {
    case Request::Command::status: return "status";
    case Request::Command::reload: return "reload";
    case Request::Command::scale: return "scale";
    case Request::Command::restart: return "restart";
    case Request::Command::stop: return "stop";
    case Request::Command::upgrade: return "upgrade";
    case Request::Command::logs: return "logs";
  }
  return "?";
}

Result<Request> parse_request(std::string_view line) {
  if (line.size() > max_request_bytes)
    return Error{"request too long: more than " + std::to_string(max_request_bytes) + " bytes"};
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    return Error{"malformed JSON: " + without_tag(e.what())};
  }
  if (!j.is_object()) return Error{R"(a request must be a JSON object such as {"cmd":"status"})"};
  const auto cmd = j.find("cmd");
  if (cmd == j.end()) return Error{R"(missing "cmd" in request)"};
  if (!cmd->is_string()) return Error{R"("cmd" must be a string)"};
  const auto& name = cmd->get_ref<const std::string&>();
  const auto command = command_named(name);
  if (!command) return Error{"unknown command " + echoed(name)};

  Request request;
  request.command = *command;
  switch (*command) {
    case Request::Command::status:
    case Request::Command::reload:
    case Request::Command::stop:
    case Request::Command::upgrade:
      if (auto ok = check_fields(j, *command, {}); !ok) return Error{ok.error()};
      return request;
    case Request::Command::scale: {
      if (auto ok = check_fields(j, *command, {"count", "delta"}); !ok) return Error{ok.error()};
      auto scale = scale_from_json(j);
      if (!scale) return Error{scale.error()};
      request.scale = *scale;
      return request;
    }
    case Request::Command::restart: {
      if (auto ok = check_fields(j, *command, {"slots"}); !ok) return Error{ok.error()};
      auto restart = restart_from_json(j);
      if (!restart) return Error{restart.error()};
      request.restart = std::move(*restart);
      return request;
    }
    case Request::Command::logs: {
      if (auto ok = check_fields(j, *command, {"lines", "slots", "follow"}); !ok) return Error{ok.error()};
      auto logs = logs_from_json(j);
      if (!logs) return Error{logs.error()};
      request.logs = std::move(*logs);
      return request;
    }
  }
  return Error{"unknown command " + echoed(name)};
}

std::string encode_request(const Request& request) {
  json j{{"cmd", to_string(request.command)}};
  switch (request.command) {
    case Request::Command::status:
    case Request::Command::reload:
    case Request::Command::stop:
    case Request::Command::upgrade:
      break;
    case Request::Command::scale:
      switch (request.scale.kind) {
        case ScaleTarget::Kind::absolute: j["count"] = request.scale.value; break;
        case ScaleTarget::Kind::delta: j["delta"] = request.scale.value; break;
      }
      break;
    case Request::Command::restart:
      if (request.restart.all) {
        j["slots"] = "all";
      } else {
        j["slots"] = request.restart.slots;
      }
      break;
    case Request::Command::logs:
      j["lines"] = request.logs.lines;
      j["slots"] = request.logs.slots;
      j["follow"] = request.logs.follow;
      break;
  }
  return j.dump();
}

Result<ScaleTarget> parse_scale_arg(std::string_view text) {
  const bool is_delta = text.starts_with('+') || text.starts_with('-');
  const auto digits = is_delta ? text.substr(1) : text;
  const bool all_digits = !digits.empty() && digits.size() <= 9 &&
                          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!all_digits) return Error{"scale: expected N, +N or -N, got " + echoed(text)};
  auto n = static_cast<int>(*integer_text(digits));
  ScaleTarget t{is_delta ? ScaleTarget::Kind::delta : ScaleTarget::Kind::absolute,
                text.starts_with('-') ? -n : n};
  if (auto ok = check_scale(t); !ok) return Error{ok.error()};
  return t;
}

Result<Request> request_from_args(std::string_view command, const std::vector<std::string>& args) {
  const auto known = command_named(command);
  if (!known) return Error{"unknown command " + echoed(command)};
  Request request;
  request.command = *known;
  switch (*known) {
    case Request::Command::status:
    case Request::Command::reload:
    case Request::Command::stop:
    case Request::Command::upgrade:
      if (!args.empty()) return Error{std::string(command) + ": takes no arguments, got " + echoed(args.front())};
      return request;
    case Request::Command::scale: {
      if (args.size() != 1) return Error{"scale: expected N, +N or -N"};
      auto scale = parse_scale_arg(args.front());
      if (!scale) return Error{scale.error()};
      request.scale = *scale;
      return request;
    }
    case Request::Command::restart:
      if (args.empty() || (args.size() == 1 && args.front() == "all")) return request;
      request.restart.all = false;
      for (const auto& arg : args) {
        auto slot = slot_number(integer_text(arg), arg);
        if (!slot) return Error{slot.error()};
        request.restart.slots.push_back(*slot);
      }
      normalise(request.restart);
      return request;
    case Request::Command::logs: {
      auto logs = parse_logs_args(args);
      if (!logs) return Error{logs.error()};
      request.logs = std::move(*logs);
      return request;
    }
  }
  return Error{"unknown command " + echoed(command)};
}

// --- replies ------------------------------------------------------------------------------

json make_ok(json extra) {
  json reply{{"ok", true}};
  if (extra.is_object()) {
    for (auto& [key, value] : extra.items()) {
      if (key != "ok") reply[key] = std::move(value);
    }
  }
  return reply;
}

json make_error(std::string_view message) { return json{{"ok", false}, {"error", std::string(message)}}; }

Result<Reply> parse_reply(std::string_view line) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    return Error{"malformed reply: " + without_tag(e.what())};
  }
  const auto ok = j.is_object() ? j.find("ok") : j.end();
  if (ok == j.end() || !ok->is_boolean()) return Error{R"(malformed reply: expected an object with "ok")"};
  Reply reply;
  reply.ok = ok->get<bool>();
  if (!reply.ok) {
    const auto error = j.find("error");
    reply.error = error != j.end() && error->is_string() ? error->get<std::string>() : "unknown error";
  }
  reply.body = std::move(j);
  return reply;
}

// --- the status document -----------------------------------------------------------------

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

json log_line_json(const OutputLine& line) {
  return json{{"time", line.unix_time}, {"slot", line.slot},   {"pid", line.pid},
              {"stream", to_string(line.stream)}, {"text", line.text}};
}

Result<OutputLine> parse_log_line(const json& j) {
  try {
    OutputLine line;
    j.at("time").get_to(line.unix_time);
    j.at("slot").get_to(line.slot);
    j.at("pid").get_to(line.pid);
    line.stream = j.at("stream").get<std::string>() == "stderr" ? OutputStream::err : OutputStream::out;
    j.at("text").get_to(line.text);
    return line;
  } catch (const json::exception& e) {
    return Error{"malformed log line: " + without_tag(e.what())};
  }
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
