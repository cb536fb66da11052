// libFuzzer: one control-socket request line, and a reply line as preforkctl reads it.

#include <preforkd/core/control_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const auto request = preforkd::control::parse_request(line);
  if (request) (void)preforkd::control::to_string(request->command);
  (void)preforkd::control::parse_reply(line);
  (void)preforkd::control::parse_scale_arg(line);
  return 0;
}
