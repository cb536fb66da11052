// The upgrade handoff's state document: JSON, versioned, read back field by field so that
// a missing or mistyped field is an error that names it.

#include <preforkd/core/master_state.hpp>

#include <preforkd/core/limits.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <sstream>

namespace preforkd {

namespace {

using json = nlohmann::json;

constexpr std::array all_states = {WorkerState::stopped, WorkerState::starting, WorkerState::ready,
                                   WorkerState::stopping, WorkerState::backoff,  WorkerState::failed};

const char* intent_name(StopIntent i) { return i == StopIntent::replace ? "replace" : "remove"; }

json optional_ms(const std::optional<std::int64_t>& v) { return v ? json(*v) : json(nullptr); }

json encode_run(const RunState& r) {
  return json{{"pid", r.pid},
              {"state", to_string(r.life.state)},
              {"failures", r.life.failures},
              {"stop_intent", intent_name(r.life.stop_intent)},
              {"stop_is_failure", r.life.stop_is_failure},
              {"trial", r.life.trial},
              {"short_of_fds", r.life.short_of_fds},
              {"reached_ready", r.reached_ready},
              {"uptime_ms", r.uptime_ms},
              {"timer_ms", optional_ms(r.timer_ms)},
              {"watchdog_ms", optional_ms(r.watchdog_ms)},
              {"stdout_fd", r.stdout_fd},
              {"stderr_fd", r.stderr_fd},
              {"notify_fd", r.notify_fd},
              {"notify_address", r.notify_address},
              {"notify_status", r.notify_status},
              {"notified_stopping", r.notified_stopping},
              {"cpu", r.cpu}};
}

json encode_exit(const LastExitState& e) {
  return json{{"kind", e.status.kind == ExitStatus::Kind::signaled ? "signaled" : "exited"},
              {"code", e.status.code},
              {"signal", e.status.signal},
              {"core_dumped", e.status.core_dumped},
              {"unix_time", e.unix_time},
              {"cause", e.cause}};
}

// Reading: each getter throws a message naming the field; decode catches it once.
struct Missing {
  std::string message;
};

const json& field(const json& j, const char* name, const std::string& where) {
  if (!j.is_object()) throw Missing{where + ": expected an object"};
  auto it = j.find(name);
  if (it == j.end()) throw Missing{where + "." + name + ": missing"};
  return *it;
}

template <class T>
T get(const json& j, const char* name, const std::string& where) {
  const json& v = field(j, name, where);
  try {
    return v.get<T>();
  } catch (const json::exception&) {
    throw Missing{where + "." + name + ": wrong type"};
  }
}

std::optional<std::int64_t> get_optional_ms(const json& j, const char* name, const std::string& where) {
  const json& v = field(j, name, where);
  if (v.is_null()) return std::nullopt;
  if (!v.is_number_integer()) throw Missing{where + "." + name + ": wrong type"};
  return v.get<std::int64_t>();
}

RunState decode_run(const json& j, const std::string& where, int format) {
  RunState r;
  r.pid = get<int>(j, "pid", where);
  const auto state = get<std::string>(j, "state", where);
  auto found = std::ranges::find_if(all_states, [&](WorkerState s) { return state == to_string(s); });
  if (found == all_states.end()) throw Missing{where + ".state: unknown state '" + state + "'"};
  r.life.state = *found;
  r.life.failures = get<int>(j, "failures", where);
  const auto intent = get<std::string>(j, "stop_intent", where);
  if (intent != "remove" && intent != "replace") throw Missing{where + ".stop_intent: unknown '" + intent + "'"};
  r.life.stop_intent = intent == "replace" ? StopIntent::replace : StopIntent::remove;
  r.life.stop_is_failure = get<bool>(j, "stop_is_failure", where);
  r.life.trial = get<bool>(j, "trial", where);
  r.life.short_of_fds = get<bool>(j, "short_of_fds", where);
  r.reached_ready = get<bool>(j, "reached_ready", where);
  r.uptime_ms = get<std::int64_t>(j, "uptime_ms", where);
  r.timer_ms = get_optional_ms(j, "timer_ms", where);
  r.watchdog_ms = get_optional_ms(j, "watchdog_ms", where);
  r.stdout_fd = get<int>(j, "stdout_fd", where);
  r.stderr_fd = get<int>(j, "stderr_fd", where);
  if (format >= 2) {
    r.notify_fd = get<int>(j, "notify_fd", where);
    r.notify_address = get<std::string>(j, "notify_address", where);
  }
  r.notify_status = get<std::string>(j, "notify_status", where);
  r.notified_stopping = get<bool>(j, "notified_stopping", where);
  r.cpu = get<int>(j, "cpu", where);
  if (has_process(r.life.state) != (r.pid > 0))
    throw Missing{where + ": pid " + std::to_string(r.pid) + " does not fit state '" + state + "'"};
  return r;
}

LastExitState decode_exit(const json& j, const std::string& where) {
  LastExitState e;
  const auto kind = get<std::string>(j, "kind", where);
  if (kind != "exited" && kind != "signaled") throw Missing{where + ".kind: unknown '" + kind + "'"};
  e.status.kind = kind == "signaled" ? ExitStatus::Kind::signaled : ExitStatus::Kind::exited;
  e.status.code = get<int>(j, "code", where);
  e.status.signal = get<int>(j, "signal", where);
  e.status.core_dumped = get<bool>(j, "core_dumped", where);
  e.unix_time = get<double>(j, "unix_time", where);
  e.cause = get<std::string>(j, "cause", where);
  return e;
}

std::string formats_text() {
  std::string out;
  for (int f : accepted_state_formats()) out.append(out.empty() ? "" : ",").append(std::to_string(f));
  return out;
}

}  // namespace

std::vector<int> accepted_state_formats() { return {1, master_state_format}; }

std::string encode_master_state(const MasterState& s) {
  json listeners = json::array();
  for (const auto& l : s.listeners)
    listeners.push_back({{"name", l.name},
                         {"address", l.address},
                         {"fds", l.fds},
                         {"socket_path", l.socket_path},
                         {"socket_dev", l.socket_dev},
                         {"socket_ino", l.socket_ino}});
  json slots = json::array();
  for (const auto& slot : s.slots)
    slots.push_back({{"run", encode_run(slot.run)},
                     {"restarts", slot.restarts},
                     {"last_exit", slot.last_exit ? encode_exit(*slot.last_exit) : json(nullptr)},
                     {"crashes", slot.crashes},
                     {"replaced_for", slot.replaced_for},
                     {"had_process", slot.had_process}});
  json reply = nullptr;
  if (s.reply) reply = {{"fd", s.reply->fd}, {"old_version", s.reply->old_version}};
  const json j{{"format", s.format},
               {"version", s.version},
               {"config_path", s.config_path},
               {"generation", s.generation},
               {"target_count", s.target_count},
               {"uptime_s", s.uptime_s},
               {"upgrades", s.upgrades},
               {"control_fd", s.control_fd},
               {"control_dev", s.control_dev},
               {"control_ino", s.control_ino},
               {"notify_fd", s.notify_fd},
               {"notify_address", s.notify_address},
               {"listeners", listeners},
               {"slots", slots},
               {"reply", reply},
               {"blocked_signals", s.blocked_signals}};
  return j.dump();
}

Result<MasterState> decode_master_state(std::string_view text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Error{std::string("upgrade state: malformed JSON: ") + e.what()};
  }
  if (!j.is_object() || !j.contains("format") || !j["format"].is_number_integer())
    return Error{"upgrade state: no format version"};
  const int format = j["format"].get<int>();
  const auto accepted = accepted_state_formats();
  if (std::ranges::find(accepted, format) == accepted.end())
    return Error{"upgrade state: format " + std::to_string(format) + " is not accepted (this preforkd reads " +
                 formats_text() + ")"};
  try {
    MasterState s;
    const std::string w = "state";
    s.format = format;
    s.version = get<std::string>(j, "version", w);
    s.config_path = get<std::string>(j, "config_path", w);
    s.generation = get<int>(j, "generation", w);
    s.target_count = get<int>(j, "target_count", w);
    s.uptime_s = get<double>(j, "uptime_s", w);
    s.upgrades = get<int>(j, "upgrades", w);
    s.control_fd = get<int>(j, "control_fd", w);
    s.control_dev = get<std::uint64_t>(j, "control_dev", w);
    s.control_ino = get<std::uint64_t>(j, "control_ino", w);
    s.notify_fd = get<int>(j, "notify_fd", w);
    s.notify_address = get<std::string>(j, "notify_address", w);
    const json& listeners = field(j, "listeners", w);
    if (!listeners.is_array()) throw Missing{"state.listeners: expected an array"};
    for (std::size_t i = 0; i < listeners.size(); ++i) {
      const std::string lw = "state.listeners[" + std::to_string(i) + "]";
      ListenerState l;
      l.name = get<std::string>(listeners[i], "name", lw);
      l.address = get<std::string>(listeners[i], "address", lw);
      l.fds = get<std::vector<int>>(listeners[i], "fds", lw);
      l.socket_path = get<std::string>(listeners[i], "socket_path", lw);
      l.socket_dev = get<std::uint64_t>(listeners[i], "socket_dev", lw);
      l.socket_ino = get<std::uint64_t>(listeners[i], "socket_ino", lw);
      s.listeners.push_back(std::move(l));
    }
    const json& slots = field(j, "slots", w);
    if (!slots.is_array()) throw Missing{"state.slots: expected an array"};
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const std::string sw = "state.slots[" + std::to_string(i) + "]";
      SlotState slot;
      slot.run = decode_run(field(slots[i], "run", sw), sw + ".run", format);
      slot.restarts = get<int>(slots[i], "restarts", sw);
      const json& e = field(slots[i], "last_exit", sw);
      if (!e.is_null()) slot.last_exit = decode_exit(e, sw + ".last_exit");
      slot.crashes = get<int>(slots[i], "crashes", sw);
      slot.replaced_for = get<std::map<std::string, int>>(slots[i], "replaced_for", sw);
      slot.had_process = get<bool>(slots[i], "had_process", sw);
      s.slots.push_back(std::move(slot));
    }
    const json& reply = field(j, "reply", w);
    if (!reply.is_null())
      s.reply = UpgradeReply{get<int>(reply, "fd", w + ".reply"), get<std::string>(reply, "old_version", w + ".reply")};
    s.blocked_signals = get<std::vector<int>>(j, "blocked_signals", w);
    if (s.target_count != static_cast<int>(s.slots.size()))
      throw Missing{"state: target_count " + std::to_string(s.target_count) + " but " +
                    std::to_string(s.slots.size()) + " slots"};
    return s;
  } catch (const Missing& m) {
    return Error{"upgrade " + m.message};
  }
}

std::string describe_state_formats() { return "state-format: " + formats_text() + "\n"; }

std::vector<int> parse_state_formats(std::string_view output) {
  std::vector<int> formats;
  std::istringstream in{std::string(output)};
  std::string line;
  while (std::getline(in, line)) {
    constexpr std::string_view key = "state-format: ";
    if (!line.starts_with(key)) continue;
    std::string_view rest = std::string_view(line).substr(key.size());
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string_view item = rest.substr(0, comma);
      int value = 0;
      auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
      if (ec == std::errc{} && p == item.data() + item.size()) formats.push_back(value);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return formats;
}

Status check_handed_listeners(const std::vector<ListenConfig>& listeners, int slots,
                              const std::vector<ListenerState>& handed) {
  if (listeners.size() != handed.size())
    return Error{"listeners: the config has " + std::to_string(listeners.size()) + " and the running master had " +
                 std::to_string(handed.size())};
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const ListenConfig& l = listeners[i];
    const ListenerState& h = handed[i];
    if (h.name != l.name || h.address != l.address.text)
      return Error{"listener '" + l.name + "': the running master had '" + h.name + "' at '" + h.address +
                   "' in its place"};
    const bool per_slot = l.mode == ListenMode::reuseport && l.address.family != AddressFamily::unix_path;
    const std::size_t want = per_slot ? static_cast<std::size_t>(slots) : 1;
    if (h.fds.size() != want)
      return Error{"listener '" + l.name + "': expected " + std::to_string(want) + " sockets, got " +
                   std::to_string(h.fds.size())};
  }
  return Ok{};
}

Status check_resumable(const MasterState& state, const Config& config) {
  if (state.target_count < 1 || state.target_count > max_workers)
    return Error{"target_count: " + std::to_string(state.target_count) + " is not a worker count from 1 to " +
                 std::to_string(max_workers)};
  return check_handed_listeners(config.listeners, state.target_count, state.listeners);
}

}  // namespace preforkd
