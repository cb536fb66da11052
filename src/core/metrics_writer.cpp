// Prometheus' text exposition format (version 0.0.4): families, samples, labels and the
// escaping and number format it asks for.

#include "metrics_writer.hpp"

#include <fmt/format.h>

#include <cmath>

namespace preforkd::metrics {

using control::ListenerStatus;
using control::StatusSnapshot;
using control::WorkerStatus;

const char* type_name(Type t) {
  switch (t) {
    case Type::gauge: return "gauge";
    case Type::counter: return "counter";
  }
  return "untyped";
}

std::string label(std::string_view name, std::string_view value) {
  return fmt::format("{}=\"{}\"", name, escape_label_value(value));
}

std::string slot_label(const WorkerStatus& w) { return label("slot", std::to_string(w.slot)); }
std::string listener_label(const ListenerStatus& l) { return label("listener", l.name); }

void Writer::family(std::string_view name, std::string_view help, Type type) {
  name_ = name;
  help_ = help;
  type_ = type;
  open_ = false;
}

void Writer::sample(const std::string& labels, double value) {
  if (!open_) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, escape_help(help_), name_, type_name(type_));
    open_ = true;
  }
  out_ += name_;
  if (!labels.empty()) {
    out_ += '{';
    out_ += labels;
    out_ += '}';
  }
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
}

void Writer::per_worker(const StatusSnapshot& s, const std::function<std::optional<double>(const WorkerStatus&)>& value) {
  for (const WorkerStatus& w : s.workers) {
    if (const auto v = value(w)) sample(slot_label(w), *v);
  }
}

void Writer::per_listener(const StatusSnapshot& s,
                          const std::function<std::optional<double>(const ListenerStatus&)>& value) {
  for (const ListenerStatus& l : s.listeners) {
    if (const auto v = value(l)) sample(listener_label(l), *v);
  }
}

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

}  // namespace preforkd::metrics
