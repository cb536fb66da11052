#include <preforkd/os/sys_error.hpp>

#include <cctype>
#include <cstring>

namespace preforkd::os {

std::string sentence_tail(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string errno_text(int err) { return sentence_tail(std::strerror(err)); }

std::string failed_to(std::string_view verb, std::string_view what, std::string_view why) {
  std::string out("failed to ");
  out.append(verb).append(" '").append(what).append("': ").append(why);
  return out;
}

Error errno_error(std::string_view verb, std::string_view what, int err) {
  return Error{failed_to(verb, what, errno_text(err))};
}

}  // namespace preforkd::os
