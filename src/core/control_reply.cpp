#include <preforkd/core/control_reply.hpp>

#include "control_fields.hpp"

#include <string>

namespace preforkd::control {

using nlohmann::json;
using detail::without_tag;

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

}  // namespace preforkd::control
