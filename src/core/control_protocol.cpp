#include <preforkd/core/control_request.hpp>

#include "control_fields.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

namespace preforkd::control {
namespace {

using nlohmann::json;
using namespace detail;

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
  normalise(t.slots);
  return t;
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
  normalise(t.slots);
  return t;
}

}  // namespace

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

}  // namespace preforkd::control
