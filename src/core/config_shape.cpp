// A cheap pass over the raw TOML text before toml++ parses it. toml++ recurses once per
// level of nesting (dotted keys, table headers, inline arrays and tables), both while it
// parses and when it frees the tree, so 60,000 levels overflow the master's stack: a
// reload of such a file would kill the master and every worker. This pass measures the
// nesting without recursion and refuses the file before toml++ sees it.
//
// It does not validate TOML: where the text is not TOML it stops and lets toml++ report
// the error, which toml++ does before it reaches anything further on. It only has to agree
// with toml++ on where strings and comments are, up to the first syntax error.

#include <fmt/format.h>

#include <vector>

#include "config_reader.hpp"

namespace preforkd::config_detail {
namespace {

class ShapeScanner {
 public:
  ShapeScanner(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

  std::optional<ShapeError> run() {
    while (!error_ && !done()) statement();
    return error_;
  }

 private:
  struct Frame {
    bool table;  // an inline table (keys follow) or an array (values follow)
    int depth;   // of the container itself
  };

  [[nodiscard]] bool done() const { return pos_ >= text_.size(); }
  [[nodiscard]] char peek(std::size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  void advance(std::size_t n = 1) {
    for (std::size_t i = 0; i < n && pos_ < text_.size(); ++i) {
      if (text_[pos_] == '\n') {
        ++line_;
        line_start_ = pos_ + 1;
      }
      ++pos_;
    }
  }
  [[nodiscard]] Place here() const {
    return {line_, static_cast<int>(pos_ - line_start_) + 1};
  }

  void skip_blanks() {
    while (peek() == ' ' || peek() == '\t') advance();
  }
  void skip_line() {
    while (!done() && peek() != '\n') advance();
  }
  // Blanks, newlines and comments: what may sit between the values of an array.
  void skip_space() {
    while (!done()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        advance();
      } else if (c == '#') {
        skip_line();
      } else {
        return;
      }
    }
  }

  void fail(Place where) {
    if (error_) return;
    error_ = ShapeError{where, fmt::format("tables, arrays and dotted keys are nested more than {} levels deep here",
                                           max_depth_)};
  }
  bool check(Place where, int depth) {
    if (depth <= max_depth_) return true;
    fail(where);
    return false;
  }

  // Strings: '...', "...", '''...''', """...""" (escapes only in the double-quoted ones).
  void skip_string() {
    const char quote = peek();
    const bool multi = peek(1) == quote && peek(2) == quote;
    advance(multi ? 3 : 1);
    while (!done()) {
      const char c = peek();
      if (c == '\\' && quote == '"') {
        advance(2);
      } else if (c == quote && (!multi || (peek(1) == quote && peek(2) == quote))) {
        if (!multi) {
          advance();
          return;
        }
        advance(3);
        // Up to two more quotes belong to the content: """a"""" ends in a quote.
        for (int i = 0; i < 2 && peek() == quote; ++i) advance();
        return;
      } else if (c == '\n' && !multi) {
        return;  // unterminated: toml++ reports it
      } else {
        advance();
      }
    }
  }

  // A key, bare or quoted, with dots; its number of segments (0 when there is none).
  int key() {
    int segments = 0;
    while (true) {
      skip_blanks();
      const char c = peek();
      if (c == '"' || c == '\'') {
        skip_string();
      } else if (is_bare(c)) {
        while (is_bare(peek())) advance();
      } else {
        return segments;
      }
      ++segments;
      skip_blanks();
      if (peek() != '.') return segments;
      advance();
    }
  }
  static bool is_bare(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  }

  // One line at the top level: blank, comment, [table], [[array]] or key = value.
  void statement() {
    skip_space();
    if (done()) return;
    if (peek() == '[') {
      const Place where = here();
      advance(peek(1) == '[' ? 2 : 1);
      header_depth_ = key();
      check(where, header_depth_);
      skip_line();
      return;
    }
    const Place where = here();
    const int segments = key();
    if (segments == 0) return skip_line();  // not TOML: toml++ stops here
    if (!check(where, header_depth_ + segments)) return;
    skip_blanks();
    if (peek() != '=') return skip_line();
    advance();
    value(header_depth_ + segments);
    skip_line();  // a comment, or what toml++ will reject
  }

  // A value whose container, if it is one, sits at `depth`. Iterative: nesting costs
  // heap, not stack.
  void value(int depth) {
    std::vector<Frame> open;
    bool want_value = true;  // false: after a value, a separator or a closing bracket
    while (!error_ && !done()) {
      open.empty() ? skip_blanks() : skip_space();
      const char c = peek();
      if (want_value) {
        if (c == '[' || c == '{') {
          const Place where = here();
          if (!check(where, depth)) return;
          open.push_back({c == '{', depth});
          advance();
          if (c == '{' && !table_key(open, depth)) return;
          if (c == '[') depth = open.back().depth + 1;
          continue;
        }
        if (!open.empty() && ((c == ']' && !open.back().table) || (c == '}' && open.back().table))) {
          want_value = false;  // an empty array or table, or a trailing comma
          continue;
        }
        if (c == '"' || c == '\'') {
          skip_string();
        } else if (!scalar()) {
          return;
        }
        want_value = false;
        continue;
      }
      if (open.empty()) return;
      if (c == ',') {
        advance();
        if (open.back().table) {
          if (!table_key(open, depth)) return;
        } else {
          depth = open.back().depth + 1;
          want_value = true;
        }
        want_value = true;
        continue;
      }
      if ((c == ']' && !open.back().table) || (c == '}' && open.back().table)) {
        advance();
        open.pop_back();
        continue;
      }
      if (!scalar()) return;  // "1979-05-27 07:32:00": a date-time has a space in it
    }
  }

  // After "{" or ",": a key and its "=", or the "}" of an empty table. Sets the depth of
  // the value that follows; false when the text is not TOML.
  bool table_key(std::vector<Frame>& open, int& depth) {
    skip_blanks();
    if (peek() == '}') return true;  // handled as the end of the table by the caller
    const Place where = here();
    const int segments = key();
    if (segments == 0) return false;
    depth = open.back().depth + segments;
    if (!check(where, depth)) return false;
    skip_blanks();
    if (peek() != '=') return false;
    advance();
    return true;
  }

  // Numbers, booleans, dates: up to the next separator. False when there is nothing.
  bool scalar() {
    const std::size_t start = pos_;
    while (!done()) {
      const char c = peek();
      if (c == ',' || c == ']' || c == '}' || c == '[' || c == '{' || c == '#' || c == ' ' || c == '\t' ||
          c == '\r' || c == '\n' || c == '"' || c == '\'')
        break;
      advance();
    }
    return pos_ > start;
  }

  std::string_view text_;
  int max_depth_;
  std::size_t pos_ = 0;
  std::size_t line_start_ = 0;
  int line_ = 1;
  int header_depth_ = 0;
  std::optional<ShapeError> error_;
};

}  // namespace

std::optional<ShapeError> check_shape(std::string_view text, int max_depth) {
  return ShapeScanner(text, max_depth).run();
}

}  // namespace preforkd::config_detail
