#include "config_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <preforkd/core/limits.hpp>

namespace preforkd::config_detail {

Place place_of(const toml::node& node) {
  const auto& begin = node.source().begin;
  return {static_cast<int>(begin.line), static_cast<int>(begin.column)};
}

Place place_of(const toml::key& key) {
  const auto& begin = key.source().begin;
  return {static_cast<int>(begin.line), static_cast<int>(begin.column)};
}

namespace {
// Errors kept to sort into file order: more than are printed, so that the ones printed are
// the first in the file in all but pathological files, and few enough to stay small.
constexpr std::size_t kept_errors = 20 * limits::config_errors;
}  // namespace

void Diagnostics::add(Place where, std::string key, std::string message) {
  if (errors_.size() >= kept_errors) {
    ++dropped_;
    return;
  }
  errors_.push_back({file_, where.line, where.column, std::move(key), std::move(message)});
}

std::vector<ConfigError> Diagnostics::in_file_order() && {
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  const std::size_t total = errors_.size() + dropped_;
  if (total > limits::config_errors) {
    errors_.resize(limits::config_errors);
    errors_.push_back({file_, 0, 0, "", fmt::format("... and {} more errors", total - limits::config_errors)});
  }
  return std::move(errors_);
}

// ---- messages ----

void report(Diagnostics& diag, const Field& field, std::string message) {
  diag.add(field.place, field.key, std::move(message));
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "a value";
}

std::string value_text(const toml::node& node) {
  if (const auto* s = node.as_string()) return quoted(s->get());
  if (const auto* i = node.as_integer()) return fmt::format("{}", i->get());
  if (const auto* f = node.as_floating_point()) return fmt::format("{}", f->get());
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  return type_name(node);
}


std::string key_path(std::string_view prefix, std::string_view key) {
  const bool bare = !key.empty() && key.size() <= limits::echoed_bytes && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
  });
  const std::string part = bare ? std::string(key) : quoted(key);
  return prefix.empty() ? part : fmt::format("{}.{}", prefix, part);
}

std::string one_of(std::span<const std::string_view> names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += quoted(names[i]);
  }
  return out;
}

namespace {

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// Optimal string alignment distance, case-insensitive: a swap of two neighbours counts as
// one edit, so "nmae" is one step from "name".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::optional<std::string_view> closest(std::string_view word, std::span<const std::string_view> known) {
  // The edit distance is quadratic in the length: a typo is short, a megabyte is not one.
  if (word.size() > limits::suggestion_chars) return std::nullopt;
  // About one typo per three characters, and at least one; a truncated or extended key
  // ("stop_sig", "warning") also counts as close.
  const std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
  std::optional<std::string_view> best;
  std::size_t best_distance = limit + 1;
  for (const std::string_view k : known) {
    const std::size_t distance = edit_distance(word, k);
    if (distance < best_distance) {
      best = k;
      best_distance = distance;
    }
  }
  if (best) return best;
  for (const std::string_view k : known) {
    if ((word.size() >= 3 && k.starts_with(word)) || (k.size() >= 3 && word.starts_with(k))) return k;
  }
  return std::nullopt;
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> known) {
  const auto match = closest(word, known);
  return match ? fmt::format("; did you mean {}?", quoted(*match)) : std::string();
}

// ---- sections ----

void Section::reject_unknown(std::span<const std::string_view> known) const {
  for (const auto& [key, node] : table_) {
    if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
    const bool is_table = node.is_table() || node.is_array_of_tables();
    // A table is reported where its header starts, a key at the key.
    const Place where = is_table ? place_of(node) : place_of(key);
    std::string hint = did_you_mean(key.str(), known);
    if (hint.empty()) {
      std::vector<std::string_view> names(known.begin(), known.end());
      std::sort(names.begin(), names.end());
      hint = fmt::format("; expected {}", one_of(names));
    }
    diag_.add(where, key_path(name_, key.str()), fmt::format("unknown {}{}", is_table ? "table" : "key", hint));
  }
}

Field Section::field(std::string_view key) const {
  Field f;
  f.key = key_path(name_, key);
  f.node = table_.get(key);
  f.place = place_of(f.node != nullptr ? *f.node : static_cast<const toml::node&>(table_));
  return f;
}

void Section::report_missing(std::string_view key, std::string_view example) const {
  diag_.add(place_of(table_), key_path(name_, key), fmt::format("required key is missing; e.g. {} = {}", key, example));
}

// ---- typed reads ----

std::optional<std::string> read_string(Diagnostics& diag, const Field& field) {
  if (field.node == nullptr) return std::nullopt;
  const auto* s = field.node->as_string();
  if (s == nullptr) {
    report(diag, field, fmt::format("expected a string, got {}", type_name(*field.node)));
    return std::nullopt;
  }
  if (s->get().size() > limits::string_bytes) {
    report(diag, field,
           fmt::format("is {} bytes long; a string can have at most {}", s->get().size(), limits::string_bytes));
    return std::nullopt;
  }
  // Every string ends up in a C API (execve, getpwnam, chdir) that would stop at a NUL.
  if (s->get().find('\0') != std::string::npos) {
    report(diag, field, "must not contain a NUL character (\\u0000)");
    return std::nullopt;
  }
  return s->get();
}

std::optional<std::int64_t> read_integer(Diagnostics& diag, const Field& field, std::int64_t min, std::int64_t max) {
  if (field.node == nullptr) return std::nullopt;
  const auto* i = field.node->as_integer();
  if (i != nullptr && i->get() >= min && i->get() <= max) return i->get();
  report(diag, field,
         fmt::format("must be an integer from {} to {}, got {}", min, max,
                     i != nullptr ? value_text(*field.node) : type_name(*field.node)));
  return std::nullopt;
}

std::optional<Duration> read_duration(Diagnostics& diag, const Field& field) {
  if (field.node == nullptr) return std::nullopt;
  const auto* s = field.node->as_string();
  if (s == nullptr) {
    // A bare number is the likely slip: say which unit is missing rather than just the type.
    const bool number = field.node->is_integer() || field.node->is_floating_point();
    report(diag, field,
           fmt::format("expected a duration {}such as \"30s\", got {}", number ? "with a unit " : "",
                       number ? value_text(*field.node) : type_name(*field.node)));
    return std::nullopt;
  }
  std::string why;
  const auto d = parse_duration(s->get(), &why);
  if (!d) report(diag, field, why);
  return d;
}

std::optional<Duration> read_positive_duration(Diagnostics& diag, const Field& field) {
  const auto d = read_duration(diag, field);
  if (d && *d <= Duration::zero()) {
    report(diag, field, fmt::format("must be greater than 0s, got {}", value_text(*field.node)));
    return std::nullopt;
  }
  return d;
}

bool within(const Section& s, const Field& f, std::size_t size, std::size_t max, std::string_view what) {
  if (size <= max) return true;
  report(s.diag(), f, fmt::format("has {} {}; at most {} are allowed", size, what, max));
  return false;
}

std::optional<std::uint64_t> read_size_text(Diagnostics& diag, const Field& field, std::string_view text,
                                            std::uint64_t min, std::uint64_t max, std::string_view out_of_range,
                                            ZeroSize zero) {
  std::string why;
  const auto size = parse_size(text, &why);
  if (!size) {
    report(diag, field, why);
    return std::nullopt;
  }
  if (*size == 0 && zero == ZeroSize::off) return size;
  if (*size < min || *size > max) {
    report(diag, field, std::string(out_of_range));
    return std::nullopt;
  }
  return size;
}

namespace {
bool numeric_id(const std::string& name) {
  return !name.empty() && name.size() <= 10 && name.find_first_not_of("0123456789") == std::string::npos;
}
}  // namespace

void check_user(Diagnostics& diag, const Field& field, const std::string& name) {
  const SystemLookup* lookup = diag.lookup();
  if (lookup == nullptr || !lookup->user_exists || name.empty() || numeric_id(name)) return;
  if (!lookup->user_exists(name)) report(diag, field, fmt::format("unknown user {}", quoted(name)));
}

void check_group(Diagnostics& diag, const Field& field, const std::string& name) {
  const SystemLookup* lookup = diag.lookup();
  if (lookup == nullptr || !lookup->group_exists || name.empty() || numeric_id(name)) return;
  if (!lookup->group_exists(name)) report(diag, field, fmt::format("unknown group {}", quoted(name)));
}

void report_bad_choice(Diagnostics& diag, const Field& field, std::span<const std::string_view> names) {
  const auto* s = field.node->as_string();
  const std::string hint = s != nullptr ? did_you_mean(s->get(), names) : std::string();
  report(diag, field,
         fmt::format("must be {}{}, got {}{}", names.size() > 2 ? "one of " : "", one_of(names),
                     s != nullptr ? value_text(*field.node) : type_name(*field.node), hint));
}

}  // namespace preforkd::config_detail
