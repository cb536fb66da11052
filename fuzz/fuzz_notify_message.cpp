// libFuzzer: one sd_notify datagram from a worker.

#include <preforkd/core/notify_message.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  (void)preforkd::parse_notify_message(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
