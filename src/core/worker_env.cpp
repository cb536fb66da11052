#include <preforkd/core/worker_env.hpp>

#include <preforkd/core/env_file.hpp>

#include <algorithm>
#include <chrono>
#include <string_view>

namespace preforkd {

namespace {

// Variables that describe the master's own supervision and must not leak to workers.
bool belongs_to_master(std::string_view entry) {
  for (std::string_view prefix : {"LISTEN_", "NOTIFY_SOCKET=", "WATCHDOG_", "PREFORK_"})
    if (entry.starts_with(prefix)) return true;
  return false;
}

std::string_view name_of(std::string_view entry) { return entry.substr(0, entry.find('=')); }

}  // namespace

std::vector<std::string> build_worker_env(const std::vector<std::string>& master_env, const WorkerConfig& worker,
                                          const WorkerIdentity& id) {
  // The env files in order, then env on top (as docker compose's env_file and environment).
  std::vector<std::pair<std::string, std::string>> vars = worker.env_file_vars;
  for (const auto& [k, v] : worker.env) set_env_var(vars, k, v);
  std::vector<std::string> env;
  env.reserve(master_env.size() + vars.size() + 12);
  for (const auto& e : master_env) {
    if (belongs_to_master(e)) continue;
    const bool overridden = std::ranges::any_of(vars, [&](const auto& kv) { return kv.first == name_of(e); });
    if (!overridden) env.push_back(e);
  }
  for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
  env.push_back("LISTEN_FDS=" + std::to_string(id.listen_fds));
  env.push_back("LISTEN_FDNAMES=" + id.fd_names);
  env.push_back("PREFORK_CHILD=1");
  env.push_back("PREFORK_WORKER_ID=" + std::to_string(id.slot));
  env.push_back("PREFORK_WORKERS=" + std::to_string(id.workers));
  env.push_back("PREFORK_MASTER_PID=" + std::to_string(id.master_pid));
  env.push_back("PREFORK_GENERATION=" + std::to_string(id.generation));
  if (!id.notify_socket.empty()) env.push_back("NOTIFY_SOCKET=" + id.notify_socket);
  if (id.watchdog > Duration::zero()) {
    const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(id.watchdog).count();
    env.push_back("WATCHDOG_USEC=" + std::to_string(usec));
    // WATCHDOG_PID names the worker itself, known only after fork: spawn adds it.
  }
  return env;
}

}  // namespace preforkd
