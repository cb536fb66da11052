#pragma once
// Private to the config parser: reading toml++ nodes into typed values while collecting
// every error with its place, so one run of `preforkd --check` shows all the problems.

#include <preforkd/core/message_text.hpp>
#include <toml++/toml.h>

#include <array>
#include <cstdint>
#include <optional>
#include <preforkd/core/config.hpp>
#include <preforkd/core/message_text.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace preforkd::config_detail {

struct Place {
  int line = 0;
  int column = 0;
};

[[nodiscard]] Place place_of(const toml::node& node);
[[nodiscard]] Place place_of(const toml::key& key);

// The errors found in one file.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file, const SystemLookup* lookup = nullptr)
      : file_(std::move(file)), lookup_(lookup) {}
  // What the checks may look up on the system; nullptr: nothing.
  [[nodiscard]] const SystemLookup* lookup() const { return lookup_; }
  void add(Place where, std::string key, std::string message);
  [[nodiscard]] bool empty() const { return errors_.empty() && dropped_ == 0; }
  // Sections are read in a fixed order and toml++ tables are sorted by name, so errors are
  // sorted by place at the end to come out in file order. At most limits::config_errors
  // are returned, then one line that counts the rest.
  [[nodiscard]] std::vector<ConfigError> in_file_order() &&;

 private:
  std::string file_;
  const SystemLookup* lookup_;
  std::vector<ConfigError> errors_;  // bounded: the first kept_errors found
  std::size_t dropped_ = 0;          // found beyond those
};

// Nesting too deep for toml++ (see config_shape.cpp), found without parsing.
struct ShapeError {
  Place where;
  std::string message;
};
[[nodiscard]] std::optional<ShapeError> check_shape(std::string_view text, int max_depth);

// A value in the file (nullptr when the key is absent) and its name in messages.
struct Field {
  const toml::node* node = nullptr;
  std::string key;  // "worker.count", "listen[1].address"
  Place place;      // of the value, or of the table that lacks it
};

// One table of the file: looks up its keys and reports the ones it does not know.
class Section {
 public:
  Section(const toml::table& table, std::string name, Diagnostics& diag)
      : table_(table), name_(std::move(name)), diag_(diag) {}

  // Reports every key not in `known`, suggesting the closest known one.
  void reject_unknown(std::span<const std::string_view> known) const;
  [[nodiscard]] Field field(std::string_view key) const;
  // Reports a required key that is absent; `example` shows the expected form.
  void report_missing(std::string_view key, std::string_view example) const;
  [[nodiscard]] Diagnostics& diag() const { return diag_; }
  [[nodiscard]] const toml::table& table() const { return table_; }
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  const toml::table& table_;
  std::string name_;  // "" for the root, "worker", "listen[0]"
  Diagnostics& diag_;
};

// Messages.
void report(Diagnostics& diag, const Field& field, std::string message);
[[nodiscard]] std::string type_name(const toml::node& node);   // "an integer"
[[nodiscard]] std::string value_text(const toml::node& node);  // 30, "text", true; type otherwise
[[nodiscard]] std::string key_path(std::string_view prefix, std::string_view key);
[[nodiscard]] std::string one_of(std::span<const std::string_view> names);  // "a", "b" or "c"
// The known name closest to `word` by edit distance, when it is close enough to be a typo.
[[nodiscard]] std::optional<std::string_view> closest(std::string_view word, std::span<const std::string_view> known);
[[nodiscard]] std::string did_you_mean(std::string_view word, std::span<const std::string_view> known);

// Typed reads: nullopt when the key is absent (nothing reported) or wrong (reported).
[[nodiscard]] std::optional<std::string> read_string(Diagnostics& diag, const Field& field);
[[nodiscard]] std::optional<std::int64_t> read_integer(Diagnostics& diag, const Field& field, std::int64_t min,
                                                       std::int64_t max);
[[nodiscard]] std::optional<Duration> read_duration(Diagnostics& diag, const Field& field);
// A duration that must be greater than zero.
[[nodiscard]] std::optional<Duration> read_positive_duration(Diagnostics& diag, const Field& field);
// An array longer than `max` is reported once, as a whole, instead of element by element.
[[nodiscard]] bool within(const Section& s, const Field& f, std::size_t size, std::size_t max, std::string_view what);

// Whether a size of 0 ("0KiB") is one more value beside the range: off.
enum class ZeroSize { in_range, off };
// The string `text` of `field` as a size with a unit ("512MiB"), from `min` to `max`:
// nullopt when it is malformed (parse_size's reason reported) or outside them
// (`out_of_range` reported, the message in the key's own wording).
[[nodiscard]] std::optional<std::uint64_t> read_size_text(Diagnostics& diag, const Field& field, std::string_view text,
                                                          std::uint64_t min, std::uint64_t max,
                                                          std::string_view out_of_range,
                                                          ZeroSize zero = ZeroSize::in_range);

template <typename Enum>
struct Choice {
  std::string_view name;
  Enum value;
};

// Reports "must be one of ..., got ..." and a suggestion for a misspelt choice.
void report_bad_choice(Diagnostics& diag, const Field& field, std::span<const std::string_view> names);

template <typename Enum, std::size_t N>
[[nodiscard]] std::optional<Enum> read_choice(Diagnostics& diag, const Field& field,
                                              const std::array<Choice<Enum>, N>& choices) {
  if (field.node == nullptr) return std::nullopt;
  if (const auto* s = field.node->as_string()) {
    for (const auto& c : choices) {
      if (c.name == s->get()) return c.value;
    }
  }
  std::array<std::string_view, N> names;
  for (std::size_t i = 0; i < N; ++i) names[i] = choices[i].name;
  report_bad_choice(diag, field, names);
  return std::nullopt;
}

// With a lookup: reports a user or group that does not exist.
void check_user(Diagnostics& diag, const Field& field, const std::string& name);
void check_group(Diagnostics& diag, const Field& field, const std::string& name);

// The sections, each in its own file.
void read_daemon(const Section& section, DaemonConfig& out);
void read_worker(const Section& section, int usable_cpus, WorkerConfig& out);
// [worker] cpu_affinity, stall_timeout, max_memory, max_lifetime, memory_sample_interval
// and log_buffer (config_worker_resources.cpp).
void read_worker_resources(const Section& section, WorkerConfig& out);
void read_listeners(Diagnostics& diag, const Field& field, std::vector<ListenConfig>& out);
// [worker] env_file (config_env_file.cpp): the key, then, after the file is read, the files.
void read_env_file(const Section& section, WorkerConfig& out);
// [worker] pool, min_count, spare, idle_timeout (config_pool.cpp), after count.
void read_pool(const Section& section, WorkerConfig& out);
void load_env_files(Config& config, std::vector<ConfigError>& errors);

}  // namespace preforkd::config_detail
