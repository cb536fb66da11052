#include <preforkd/ctl/logs_command.hpp>

#include <preforkd/core/exit_codes.hpp>
#include <preforkd/ctl/control_client.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <ctime>

namespace preforkd::ctl {
namespace {

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "preforkctl: %s\n", message.c_str());
  return code;
}

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

// Prints one line of output; false when the message is not one.
bool print_line(const nlohmann::json& j, bool json) {
  auto line = control::parse_log_line(j);
  if (!line) return false;
  if (json) {
    std::printf("%s\n", dump(j).c_str());
  } else {
    std::printf("%s\n", format_log_line(*line).c_str());
  }
  return true;
}

}  // namespace

std::string format_log_line(const OutputLine& line) {
  const double whole = std::floor(line.unix_time);
  const auto t = static_cast<std::time_t>(whole);
  const int ms = std::min(999, static_cast<int>((line.unix_time - whole) * 1000));
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  return fmt::format("{}.{:03} worker {} (pid {}): {}", when, ms, line.slot, line.pid, line.text);
}

int run_logs(const std::string& path, const control::Request& request, Duration timeout, bool json) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto client = ControlClient::connect(path, deadline);
  if (!client) return fail(exit_code::unreachable, client.error());
  auto first = client->exchange(control::encode_request(request), deadline, timeout);
  if (!first) return fail(exit_code::unreachable, first.error());
  auto reply = control::parse_reply(*first);
  if (!reply) return fail(exit_code::failed, "'" + path + "': " + reply.error());
  if (!reply->ok) return fail(exit_code::failed, reply->error);
  const auto lines = reply->body.find("lines");
  if (lines == reply->body.end() || !lines->is_array()) return fail(exit_code::failed, "'" + path + "': no lines in the reply");
  for (const auto& j : *lines) {
    if (!print_line(j, json)) return fail(exit_code::failed, "'" + path + "': malformed line " + dump(j));
  }
  std::fflush(stdout);
  if (!request.logs.follow) return exit_code::ok;

  // Following: one message per line until the master hangs up (it stopped).
  while (true) {
    auto next = client->next_line();
    if (!next) return fail(exit_code::failed, next.error());
    if (!*next) {
      std::fprintf(stderr, "preforkctl: the master closed the connection (it stopped or restarted)\n");
      return exit_code::ok;
    }
    nlohmann::json message;
    try {
      message = nlohmann::json::parse(**next);
    } catch (const nlohmann::json::exception&) {
      return fail(exit_code::failed, "'" + path + "': malformed message while following");
    }
    if (const auto dropped = message.find("dropped"); dropped != message.end()) {
      if (json) {
        std::printf("%s\n", dump(message).c_str());
      } else {
        std::fprintf(stderr, "preforkctl: %s lines left out: this client read more slowly than they came\n",
                     dump(*dropped).c_str());
      }
    } else if (const auto line = message.find("line"); line == message.end() || !print_line(*line, json)) {
      return fail(exit_code::failed, "'" + path + "': malformed message while following: " + dump(message));
    }
    std::fflush(stdout);
  }
}

}  // namespace preforkd::ctl
