// systemd's EnvironmentFile= syntax as a state machine over characters, state for state
// the one of systemd's src/basic/env-file.c (v254 and later), with errors where systemd
// skips a line.

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <preforkd/core/env_file.hpp>
#include <preforkd/core/message_text.hpp>

namespace preforkd {

namespace {

bool is_newline(char c) {
  return c == '\n' || c == '\r';
}
bool is_blank(char c) {
  return c == ' ' || c == '\t' || is_newline(c);
}
bool is_comment(char c) {
  return c == '#' || c == ';';
}
// Inside "double quotes" a backslash unescapes these and is kept before any other.
bool needs_shell_escape(char c) {
  return c == '"' || c == '\\' || c == '`' || c == '$';
}

enum class State {
  pre_key,       // at the start of a line, before the name
  key,           // in the name, up to "="
  pre_value,     // after "=" or a closing quote, skipping blanks
  value,         // unquoted
  value_escape,  // after an unquoted backslash
  single_quote,
  double_quote,
  double_quote_escape,
  comment,
  comment_escape,
};

class Parser {
 public:
  EnvFileParse run(std::string_view text) {
    if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
      const auto line = 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(nul), '\n'));
      out_.error = EnvFileError{line, "contains a NUL byte; is this a text file?"};
      return std::move(out_);
    }
    for (const char c : text) {
      step(c);
      if (c == '\n') ++line_;
      if (out_.error) return std::move(out_);
    }
    finish();
    return std::move(out_);
  }

 private:
  void step(char c) {
    switch (state_) {
      case State::pre_key:
        if (is_comment(c)) {
          state_ = State::comment;
        } else if (c == '=') {
          start_key();
          state_ = State::pre_value;
        } else if (!is_blank(c)) {
          start_key();
          key_ += c;
          state_ = State::key;
        }
        return;
      case State::key:
        if (is_newline(c)) return fail(no_equals_message());
        if (c == '=') {
          trim_key();
          state_ = State::pre_value;
        } else {
          key_ += c;
        }
        return;
      case State::pre_value:
        if (is_newline(c)) return push();
        if (c == '\'') {
          quote_line_ = line_;
          state_ = State::single_quote;
        } else if (c == '"') {
          quote_line_ = line_;
          state_ = State::double_quote;
        } else if (c == '\\') {
          state_ = State::value_escape;
        } else if (!is_blank(c)) {
          value_ += c;
          trailing_blanks_ = 0;
          state_ = State::value;
        }
        return;
      case State::value:
        if (is_newline(c)) {
          value_.resize(value_.size() - trailing_blanks_);
          return push();
        }
        if (c == '\\') {
          trailing_blanks_ = 0;
          state_ = State::value_escape;
          return;
        }
        value_ += c;
        trailing_blanks_ = (c == ' ' || c == '\t') ? trailing_blanks_ + 1 : 0;
        return;
      case State::value_escape:
        // A backslash before a newline continues the value; before anything else it
        // takes that character as it is (an escaped blank is not trimmed).
        state_ = State::value;
        trailing_blanks_ = 0;
        if (!is_newline(c)) value_ += c;
        return;
      case State::single_quote:
        if (c == '\'') {
          state_ = State::pre_value;
        } else {
          value_ += c;
        }
        return;
      case State::double_quote:
        if (c == '"') {
          state_ = State::pre_value;
        } else if (c == '\\') {
          state_ = State::double_quote_escape;
        } else {
          value_ += c;
        }
        return;
      case State::double_quote_escape:
        state_ = State::double_quote;
        if (needs_shell_escape(c)) {
          value_ += c;
        } else if (c != '\n') {
          value_ += '\\';
          value_ += c;
        }
        return;
      case State::comment:
        // Since systemd v254 a backslash does not continue a comment onto the next line.
        if (c == '\\') {
          state_ = State::comment_escape;
        } else if (is_newline(c)) {
          state_ = State::pre_key;
        }
        return;
      case State::comment_escape:
        state_ = is_newline(c) ? State::pre_key : State::comment;
        return;
    }
  }

  void finish() {
    switch (state_) {
      case State::pre_key:
      case State::comment:
      case State::comment_escape:
        return;
      case State::key:
        return fail(no_equals_message());
      case State::single_quote:
      case State::double_quote:
      case State::double_quote_escape:
        return fail(fmt::format("the {} quote opened on line {} is never closed",
                                state_ == State::single_quote ? "'" : "\"", quote_line_));
      case State::value:
        value_.resize(value_.size() - trailing_blanks_);
        return push();
      case State::pre_value:
      case State::value_escape:
        return push();
    }
  }

  void start_key() {
    key_.clear();
    value_.clear();
    trailing_blanks_ = 0;
    key_line_ = line_;
  }

  void trim_key() {
    while (!key_.empty() && (key_.back() == ' ' || key_.back() == '\t')) key_.pop_back();
  }

  std::string no_equals_message() const {
    if (key_.starts_with("export ") || key_.starts_with("export\t")) {
      return "expected KEY=VALUE; \"export\" is shell syntax that systemd's EnvironmentFile= does not accept";
    }
    return fmt::format("expected KEY=VALUE, got {}", quoted(key_));
  }

  void push() {
    state_ = State::pre_key;
    if (!env_name_is_valid(key_)) {
      const std::string_view why =
          key_.starts_with("export ") ? "; \"export\" is shell syntax that systemd does not accept" : "";
      return fail(fmt::format("invalid variable name {}: letters, digits and \"_\", not starting with a digit{}",
                              quoted(key_), why));
    }
    if (env_name_is_reserved(key_)) return fail(key_ + " is set by preforkd for every worker and cannot be set here");
    set_env_var(out_.vars, std::move(key_), std::move(value_));
    key_.clear();
    value_.clear();
  }

  void fail(std::string message) { out_.error = EnvFileError{key_line_, std::move(message)}; }

  EnvFileParse out_;
  State state_ = State::pre_key;
  std::string key_;
  std::string value_;
  std::size_t trailing_blanks_ = 0;  // unquoted, unescaped blanks at the end of value_
  int line_ = 1;
  int key_line_ = 1;
  int quote_line_ = 1;
};

constexpr std::array<std::string_view, 6> reserved_env{"LISTEN_FDS",    "LISTEN_PID",    "LISTEN_FDNAMES",
                                                       "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};

}  // namespace

bool env_name_is_reserved(std::string_view name) {
  return name.starts_with("PREFORK_") ||
         std::find(reserved_env.begin(), reserved_env.end(), name) != reserved_env.end();
}

bool env_name_is_valid(std::string_view name) {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

EnvFileParse parse_env_file(std::string_view text) {
  return Parser{}.run(text);
}

EnvFilePath parse_env_file_path(std::string_view entry) {
  if (entry.starts_with('-')) return {std::string(entry.substr(1)), true};
  return {std::string(entry), false};
}

void set_env_var(std::vector<std::pair<std::string, std::string>>& vars, std::string name, std::string value) {
  const auto same = std::find_if(vars.begin(), vars.end(), [&](const auto& kv) { return kv.first == name; });
  if (same != vars.end()) {
    same->second = std::move(value);
  } else {
    vars.emplace_back(std::move(name), std::move(value));
  }
}

}  // namespace preforkd
