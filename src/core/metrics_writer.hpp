#pragma once
// Private to metrics_text.cpp: Prometheus' text exposition format itself (families with
// their HELP and TYPE, samples, labels), apart from which metrics there are.

#include <preforkd/core/metrics_text.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace preforkd::metrics {

enum class Type { gauge, counter };

[[nodiscard]] const char* type_name(Type t);

// name="value", the value escaped.
[[nodiscard]] std::string label(std::string_view name, std::string_view value);
[[nodiscard]] std::string slot_label(const control::WorkerStatus& w);
[[nodiscard]] std::string listener_label(const control::ListenerStatus& l);

// The text, one family at a time: its HELP and TYPE, then every sample of it (the format
// wants a family's samples together). A family without samples is not written at all.
class Writer {
 public:
  void family(std::string_view name, std::string_view help, Type type);

  void sample(double value) { sample(std::string(), value); }
  void sample(const std::string& labels, double value);

  // One sample per worker: `value` returns nothing for a worker without one.
  void per_worker(const control::StatusSnapshot& s,
                  const std::function<std::optional<double>(const control::WorkerStatus&)>& value);
  void per_listener(const control::StatusSnapshot& s,
                    const std::function<std::optional<double>(const control::ListenerStatus&)>& value);

  [[nodiscard]] std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::string_view name_, help_;
  Type type_ = Type::gauge;
  bool open_ = false;
};

}  // namespace preforkd::metrics
