#pragma once
// Helpers of the systemd behaviour tests: a fake systemd notify socket that records what
// preforkd tells "systemd", a way to start preforkd with extra environment, and a
// preforkctl runner.

#include "harness.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <thread>
#include <utility>
#include <vector>

namespace bt::sd {

using Clock = std::chrono::steady_clock;

// One datagram received on the fake notify socket.
struct Datagram {
  std::string text;      // e.g. "READY=1\nSTATUS=2/2 workers ready, generation 0"
  Clock::time_point at;  // when it was received
  pid_t sender = -1;     // from SCM_CREDENTIALS
  std::vector<int> fds;  // from SCM_RIGHTS (FDSTORE=1); owned by the FakeSystemd
  // The value of `name` in this message ("NAME=value" lines), if present.
  [[nodiscard]] std::optional<std::string> get(const std::string& name) const;
  // True when the message has the line `assignment`, e.g. "READY=1".
  [[nodiscard]] bool has(const std::string& assignment) const;
};

// Plays systemd's side of sd_notify: a SOCK_DGRAM unix socket with SO_PASSCRED bound in
// its own temp dir. A thread receives every datagram and stamps it on arrival.
class FakeSystemd {
 public:
  FakeSystemd();
  ~FakeSystemd();
  FakeSystemd(const FakeSystemd&) = delete;
  FakeSystemd& operator=(const FakeSystemd&) = delete;

  // The value for NOTIFY_SOCKET.
  [[nodiscard]] const std::string& path() const { return path_; }
  // Everything received so far, in arrival order.
  [[nodiscard]] std::vector<Datagram> messages() const;
  // Waits for the first message at index >= `from` that has the line `assignment`;
  // returns its index, or nullopt on timeout.
  std::optional<std::size_t> wait_for(const std::string& assignment, std::size_t from = 0,
                                      Ms deadline = default_deadline) const;
  // How many messages have the line `assignment`.
  [[nodiscard]] int count(const std::string& assignment) const;

 private:
  void receive_loop();

  TempDir dir_;
  std::string path_;
  int fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  mutable std::mutex mutex_;
  std::vector<Datagram> messages_;
  std::thread thread_;
};

// Environment changes for the preforkd about to be started: {name, value}, or
// {name, nullopt} to remove a variable.
using EnvChanges = std::vector<std::pair<std::string, std::optional<std::string>>>;

// Starts preforkd like Daemon does, with `env` applied to the environment it inherits.
// The test process's own environment is changed only around the fork and restored at
// once (tests in one process run one after another, so nothing else reads it meanwhile).
// With `passed`, also hands it those sockets as systemd's fd store does on a restart.
std::unique_ptr<Daemon> start_daemon(const std::string& config_toml, const EnvChanges& env,
                                     const PassedFds& passed = {});

struct CtlResult {
  int code = -1;    // exit code, or -1 when it did not finish in time
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs preforkctl --socket <socket> <args...> to completion.
CtlResult run_preforkctl(const std::string& socket, const std::vector<std::string>& args,
                         Ms deadline = default_deadline);
// The control socket of `d` (the default one, in its RUNTIME_DIRECTORY).
std::string control_socket(const Daemon& d);
// `preforkctl status --json`, parsed; nullopt when it fails or does not parse.
std::optional<nlohmann::json> status_json(const Daemon& d);
// The workers of a status document that have a process: pid -> state.
std::map<pid_t, std::string> worker_states(const nlohmann::json& status);
// Exactly `count` workers, each with a process and in `state`.
bool all_in_state(const nlohmann::json& status, int count, const std::string& state);

// The parsed /env document of whichever worker answers; nullopt on error.
std::optional<nlohmann::json> worker_env(int port);
// Asks /env until `count` distinct slots answered: one /env document per slot.
std::vector<nlohmann::json> worker_envs(int port, int count, Ms deadline = default_deadline);

// CLOCK_MONOTONIC in microseconds, as systemd's MONOTONIC_USEC.
unsigned long long monotonic_usec();

// Milliseconds from `from` to `to`.
inline long long ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<Ms>(to - from).count();
}

}  // namespace bt::sd
