#pragma once
// A value or an error message: how lower layers return failures without logging them.

#include <string>
#include <utility>
#include <variant>

namespace preforkd {

struct Error {
  std::string message;
};

// E is Error, or an error type with more to say (it has a `message` too).
template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(E error) : v_(std::move(error)) {}

  [[nodiscard]] bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  [[nodiscard]] const std::string& error() const { return std::get<E>(v_).message; }
  [[nodiscard]] const E& failure() const { return std::get<E>(v_); }

 private:
  std::variant<T, E> v_;
};

// For operations that return nothing but may fail.
struct Ok {};
using Status = Result<Ok>;

}  // namespace preforkd
