// libFuzzer: the config reader, as `preforkd --check` runs it (parse, validate, look up
// users, groups and the program), with the lookups mocked so no input touches the system.

#include <preforkd/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const preforkd::SystemLookup lookup = [] {
    preforkd::SystemLookup l;
    l.user_exists = [](const std::string& name) { return name == "www-data"; };
    l.group_exists = [](const std::string& name) { return name == "www-data"; };
    l.program_problem = [](const std::string& program, const std::string&) -> std::optional<std::string> {
      if (program.starts_with("/usr/bin/")) return std::nullopt;
      return std::string("not found");
    };
    return l;
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto result = preforkd::parse_config(text, "fuzz.toml", 4, &lookup);
  // Every message is built, as --check prints them.
  std::size_t total = 0;
  for (const auto& e : result.errors) total += e.to_string().size();
  // Without the lookup too, as a reload reads it.
  const auto plain = preforkd::parse_config(text, "fuzz.toml", 4);
  // The bounds hold for any input: the error list is capped, and each line is short.
  if (result.errors.size() > 51 || plain.errors.size() > 51 || total > 51 * 2048) __builtin_trap();
  return 0;
}
