#include <preforkd/ctl/stop_command.hpp>

#include <preforkd/core/control_protocol.hpp>
#include <preforkd/core/message_text.hpp>
#include <preforkd/ctl/control_client.hpp>
#include <preforkd/ctl/process_watch.hpp>

#include <fmt/format.h>

#include <thread>

namespace preforkd::ctl {
namespace {

using Clock = std::chrono::steady_clock;

// How often the master's pid is looked at once the connection has closed: the master
// closes its sockets in its last steps, so this is short.
constexpr auto pid_poll = std::chrono::milliseconds(20);

// One request on `client`, its reply parsed; a refusal is a StopFailure too.
std::variant<control::Reply, StopFailure> ask(ControlClient& client, const std::string& path,
                                              control::Request::Command command, Deadline deadline,
                                              Duration timeout) {
  control::Request request;
  request.command = command;
  auto line = client.exchange(control::encode_request(request), deadline, timeout);
  if (!line) return StopFailure{StopError::unreachable, line.error()};
  auto reply = control::parse_reply(*line);
  if (!reply) return StopFailure{StopError::refused, "'" + path + "': " + reply.error()};
  return std::move(*reply);
}

}  // namespace

std::variant<StopOutcome, StopFailure> stop_and_wait(const std::string& socket_path, Duration timeout) {
  const Deadline deadline = Clock::now() + timeout;

  // Who is to stop: the pid to wait for, and the workers to report.
  StopOutcome out;
  {
    auto client = ControlClient::connect(socket_path, deadline);
    if (!client) return StopFailure{StopError::unreachable, client.error()};
    auto status = ask(*client, socket_path, control::Request::Command::status, deadline, timeout);
    if (auto* failure = std::get_if<StopFailure>(&status)) return std::move(*failure);
    const auto& reply = std::get<control::Reply>(status);
    if (!reply.ok) return StopFailure{StopError::refused, reply.error};
    auto snapshot = control::parse_status(reply.body);
    if (!snapshot) return StopFailure{StopError::refused, snapshot.error()};
    out.pid = snapshot->master.pid;
    out.workers = static_cast<int>(snapshot->workers.size());
  }
  // nullopt when the pid cannot be seen (another pid namespace): the closed connection
  // is then the only sign.
  const auto watch = ProcessWatch::of(out.pid);

  auto client = ControlClient::connect(socket_path, deadline);
  if (!client) return StopFailure{StopError::unreachable, client.error()};
  auto stop = ask(*client, socket_path, control::Request::Command::stop, deadline, timeout);
  if (auto* failure = std::get_if<StopFailure>(&stop)) return std::move(*failure);
  auto& reply = std::get<control::Reply>(stop);
  out.reply = std::move(reply.body);
  if (!reply.ok) return StopFailure{StopError::refused, reply.error};

  // The master keeps the connection until it exits (or closes it once it answered); then
  // its pid goes away.
  const auto closed = client->wait_closed(deadline);
  if (!closed) return StopFailure{StopError::unreachable, closed.error()};
  if (!*closed) return out;
  while (watch && !watch->exited()) {
    if (Clock::now() >= deadline) return out;
    std::this_thread::sleep_for(pid_poll);
  }
  out.exited = true;
  return out;
}

std::string describe(const StopOutcome& outcome, Duration timeout) {
  if (outcome.exited) {
    return fmt::format("stopped (pid {}, {})", outcome.pid, plural(outcome.workers, "worker"));
  }
  return fmt::format("timed out after {}; preforkd (pid {}) is still stopping", exact_duration(timeout), outcome.pid);
}

}  // namespace preforkd::ctl
