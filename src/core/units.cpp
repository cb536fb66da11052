#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <preforkd/core/limits.hpp>
#include <preforkd/core/message_text.hpp>
#include <preforkd/core/units.hpp>

namespace preforkd {
namespace {

struct Unit {
  std::string_view name;
  std::int64_t factor;  // in the base unit (milliseconds or bytes)
};

// Longest names first is not needed: a unit is the whole run of letters after a number,
// so "ms" is never read as "m" followed by "s".
constexpr std::array<Unit, 4> duration_units{{{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}}};
constexpr std::array<Unit, 4> size_units{{{"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}}};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

void set_why(std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
}

// One "<number><unit>" term, as read from the front of a string.
struct Term {
  std::string_view whole;     // digits before the point
  std::string_view fraction;  // digits after the point, empty if none
  std::string_view unit;
};

// Reads one term from the front of `rest` and advances it; nullopt when the text there
// does not start with a number. The unit may be empty (the caller reports that).
std::optional<Term> read_term(std::string_view& rest) {
  Term term;
  std::size_t i = 0;
  while (i < rest.size() && is_digit(rest[i])) ++i;
  if (i == 0) return std::nullopt;
  term.whole = rest.substr(0, i);
  if (i < rest.size() && rest[i] == '.') {
    const std::size_t start = ++i;
    while (i < rest.size() && is_digit(rest[i])) ++i;
    if (i == start) return std::nullopt;
    term.fraction = rest.substr(start, i - start);
  }
  const std::size_t unit_start = i;
  while (i < rest.size() && is_letter(rest[i])) ++i;
  term.unit = rest.substr(unit_start, i - unit_start);
  rest.remove_prefix(i);
  return term;
}

const Unit* find_unit(std::string_view name, const auto& units) {
  for (const Unit& u : units) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

// Digits to an integer; nullopt on overflow.
std::optional<std::int64_t> digits_value(std::string_view digits) {
  std::int64_t v = 0;
  for (char c : digits) {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) {
      return std::nullopt;
    }
  }
  return v;
}

enum class TermError { none, overflow, not_whole };

// term * factor, exactly; a fraction must come out as a whole number of base units.
TermError term_value(const Term& term, std::int64_t factor, std::int64_t& out) {
  const auto whole = digits_value(term.whole);
  if (!whole || __builtin_mul_overflow(*whole, factor, &out)) return TermError::overflow;
  if (term.fraction.empty()) return TermError::none;
  // More than 18 fraction digits cannot be exact with any of our factors anyway.
  if (term.fraction.size() > 18) return TermError::not_whole;
  const auto numerator = digits_value(term.fraction);
  std::int64_t denominator = 1;
  for (std::size_t i = 0; i < term.fraction.size(); ++i) denominator *= 10;
  const __int128 scaled = static_cast<__int128>(*numerator) * factor;
  if (scaled % denominator != 0) return TermError::not_whole;
  if (__builtin_add_overflow(out, static_cast<std::int64_t>(scaled / denominator), &out)) {
    return TermError::overflow;
  }
  return TermError::none;
}

std::string unit_list(const auto& units) {
  std::string names;
  for (std::size_t i = 0; i < units.size(); ++i) {
    if (i > 0) names += i + 1 == units.size() ? " or " : ", ";
    names += units[i].name;
  }
  return names;
}

// Shared by durations and sizes: a sum of terms, each with a unit from `units`.
// `what`/`example` fill the messages: "a duration"/"30s", "a size"/"512MiB".
std::optional<std::int64_t> parse_sum(std::string_view text, const auto& units, std::string_view what,
                                      std::string_view example, std::int64_t max, std::string_view max_text,
                                      std::string* why) {
  const std::string expected = fmt::format("expected {} such as \"{}\", got {}", what, example, quoted(text));
  if (text.empty()) {
    set_why(why, expected);
    return std::nullopt;
  }
  if (text.front() == '-') {
    set_why(why, fmt::format("{} cannot be negative, got {}", what, quoted(text)));
    return std::nullopt;
  }
  std::int64_t total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto term = read_term(rest);
    if (!term) {
      set_why(why, expected);
      return std::nullopt;
    }
    if (term->unit.empty()) {
      // A missing unit is the most common mistake ("30" for "30s"): say how to fix it.
      const bool at_end = rest.empty();
      set_why(why, at_end ? fmt::format("missing unit in {}; add {}, e.g. \"{}\"", quoted(text), unit_list(units), example)
                          : expected);
      return std::nullopt;
    }
    const Unit* unit = find_unit(term->unit, units);
    if (unit == nullptr) {
      set_why(why, fmt::format("unknown unit {} in {}; use {}", quoted(term->unit), quoted(text), unit_list(units)));
      return std::nullopt;
    }
    std::int64_t value = 0;
    const TermError err = term_value(*term, unit->factor, value);
    if (err == TermError::not_whole) {
      set_why(why, fmt::format("{} is not a whole number of {}", quoted(text), units.front().name));
      return std::nullopt;
    }
    if (err == TermError::overflow || __builtin_add_overflow(total, value, &total) || total > max) {
      set_why(why, fmt::format("{} is too large; {} can be at most {}", quoted(text), what, max_text));
      return std::nullopt;
    }
  }
  return total;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text, std::string* why) {
  static const std::string max_text = exact_duration(limits::max_duration) + " (30 days)";
  const auto ms = parse_sum(text, duration_units, "a duration", "30s", limits::max_duration.count(), max_text, why);
  if (!ms) return std::nullopt;
  return Duration(*ms);
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why) {
  const auto bytes = parse_sum(text, size_units, "a size", "512MiB", static_cast<std::int64_t>(limits::max_size_bytes),
                               "1024GiB (1 TiB)", why);
  if (!bytes) return std::nullopt;
  return static_cast<std::uint64_t>(*bytes);
}

namespace {

// How finely a duration is shown: people read "1.49s"; a config echo must be exact.
enum class DurationPrecision { rounded, exact };

// The seconds of `ms` (below one minute) with the fraction's trailing zeros left out: "1.5s".
std::string seconds_text(std::uint64_t ms) {
  std::string out = std::to_string(ms / 1000);
  if (const std::uint64_t frac = ms % 1000; frac != 0) {
    std::string digits = fmt::format("{:03}", frac);
    while (digits.back() == '0') digits.pop_back();
    out += '.' + digits;
  }
  return out + 's';
}

std::string duration_text(Duration d, DurationPrecision precision) {
  if (d == Duration::zero()) return "0s";
  std::string out;
  // Negative durations do not come from the config, but logs of clock arithmetic might.
  // Unsigned, so that the most negative count has a magnitude too.
  std::uint64_t ms = static_cast<std::uint64_t>(d.count());
  if (d.count() < 0) {
    out += '-';
    ms = 0 - ms;
  }
  if (ms < 1000) return out + std::to_string(ms) + "ms";
  if (precision == DurationPrecision::rounded) {
    // Half up, to 10 ms below a minute and to the second above (59.996s is "1m").
    const std::uint64_t step = ms < 59'995 ? 10 : 1000;
    ms = (ms + step / 2) / step * step;
  }
  if (ms < 60'000) return out + seconds_text(ms);
  const std::uint64_t hours = ms / 3'600'000;
  const std::uint64_t minutes = ms % 3'600'000 / 60'000;
  const std::uint64_t rest = ms % 60'000;
  if (hours != 0) out += fmt::format("{}h", hours);
  if (minutes != 0) out += fmt::format("{}m", minutes);
  if (rest != 0) out += seconds_text(rest);
  return out;
}

}  // namespace

std::string format_duration(Duration d) { return duration_text(d, DurationPrecision::rounded); }

std::string exact_duration(Duration d) { return duration_text(d, DurationPrecision::exact); }

}  // namespace preforkd
