#pragma once
// The one format of a failed system call's message, as the STYLE asks:
//   failed to <verb> '<what>': <why>
// e.g. "failed to bind '127.0.0.1:80': permission denied". <why> is the errno text with a
// lowercase first letter, so it reads as the end of a sentence after the colon.

#include <preforkd/core/result.hpp>

#include <cerrno>
#include <string>
#include <string_view>

namespace preforkd::os {

// A library's error text with a lowercase first letter, to read as the end of a sentence
// after a colon (gai_strerror's "Name or service not known").
[[nodiscard]] std::string sentence_tail(std::string text);

// strerror(err) with a lowercase first letter: "no such file or directory".
[[nodiscard]] std::string errno_text(int err);

// "failed to <verb> '<what>': <why>".
[[nodiscard]] std::string failed_to(std::string_view verb, std::string_view what, std::string_view why);

// The same with errno's text as <why>: errno_error("bind", "127.0.0.1:80", EACCES).
[[nodiscard]] Error errno_error(std::string_view verb, std::string_view what, int err = errno);

}  // namespace preforkd::os
