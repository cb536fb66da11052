// preforkctl's command-line form of a request: `scale +2`, `restart 0 3`, `logs -f -n 20 1`.
#include <preforkd/core/control_request.hpp>

#include "control_fields.hpp"

#include <algorithm>
#include <string>

namespace preforkd::control {

using namespace detail;

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
  normalise(t.slots);
  return t;
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
      normalise(request.restart.slots);
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

}  // namespace preforkd::control
