// preforkctl: sends one command to a running preforkd over its control socket and prints
// the reply. Exit codes (core/exit_codes.hpp): 0 ok, 1 the daemon refused or the operation
// failed, 2 usage, 69 the daemon cannot be reached. A --config FILE with errors is not one:
// only the socket's path is needed from it, and preforkctl says where it took that from.

#include <preforkd/core/command_line.hpp>
#include <preforkd/core/control_protocol.hpp>
#include <preforkd/core/exit_codes.hpp>
#include <preforkd/ctl/check_command.hpp>
#include <preforkd/ctl/config_choice.hpp>
#include <preforkd/ctl/control_client.hpp>
#include <preforkd/ctl/logs_command.hpp>
#include <preforkd/ctl/socket_lookup.hpp>
#include <preforkd/ctl/status_table.hpp>
#include <preforkd/ctl/stop_command.hpp>
#include <preforkd/version.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

namespace ctl = preforkd::ctl;

constexpr int exit_ok = preforkd::exit_code::ok;
constexpr int exit_failed = preforkd::exit_code::failed;
constexpr int exit_usage = preforkd::exit_code::usage;
constexpr int exit_unreachable = preforkd::exit_code::unreachable;

// A reload waits for every new worker to become ready, which may take ready_timeout per
// slot; the default leaves room for that and still ends a hung conversation.
constexpr const char* default_timeout = "10m";
// A stop waits for the master to exit: stop_timeout (30s by default) and a margin.
constexpr const char* default_stop_timeout = "90s";
// A probe answers fast or not at all: orchestrators run it every few seconds.
constexpr const char* default_check_timeout = "2s";

struct Options {
  std::string socket;
  std::string config;
  bool json = false;
  std::string timeout;  // empty: the command's default
  std::string command;
  std::vector<std::string> args;
};

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "preforkctl: %s\n", message.c_str());
  return code;
}

// Prints a successful reply that is not a status document in one line.
void print_confirmation(const preforkd::control::Reply& reply, const std::string& command) {
  const auto message = reply.body.find("message");
  if (message != reply.body.end() && message->is_string()) {
    std::printf("%s\n", message->get<std::string>().c_str());
  } else {
    std::printf("%s: ok\n", command.c_str());
  }
}

// stop: returns once the master has exited, or says that it is still stopping.
int stop(const std::string& path, preforkd::Duration timeout, bool json) {
  auto result = ctl::stop_and_wait(path, timeout);
  if (const auto* failure = std::get_if<ctl::StopFailure>(&result)) {
    return fail(failure->kind == ctl::StopError::unreachable ? exit_unreachable : exit_failed, failure->message);
  }
  const auto& outcome = std::get<ctl::StopOutcome>(result);
  const std::string said = ctl::describe(outcome, timeout);
  if (json) {
    nlohmann::json doc = outcome.reply;
    doc["pid"] = outcome.pid;
    doc["workers"] = outcome.workers;
    doc["exited"] = outcome.exited;
    doc["message"] = said;
    std::printf("%s\n", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return outcome.exited ? exit_ok : exit_failed;
  }
  if (!outcome.exited) return fail(exit_failed, said);
  std::printf("%s\n", said.c_str());
  return exit_ok;
}

// check: one status request; 0 when every slot has a ready worker, 1 when not (one line
// saying which are not), 69 when the master does not answer.
int check(const std::string& path, preforkd::Duration timeout, bool json) {
  using namespace preforkd;
  auto line = ctl::exchange(path, control::encode_request(control::Request{}), timeout);
  if (!line) return fail(exit_unreachable, line.error());
  auto reply = control::parse_reply(*line);
  if (!reply) return fail(exit_failed, "'" + path + "': " + reply.error());
  if (!reply->ok) return fail(exit_failed, reply->error);
  auto status = control::parse_status(reply->body);
  if (!status) return fail(exit_failed, status.error());
  const ctl::CheckResult result = ctl::evaluate_check(*status);
  if (json) {
    std::printf("%s\n", ctl::check_json(result).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s\n", result.message.c_str());
  }
  return result.ready ? exit_ok : exit_failed;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace preforkd;
  Options opt;
  CLI::App app{"preforkctl: control a running preforkd through its control socket"};
  auto* socket_opt = app.add_option("-s,--socket", opt.socket, "the control socket's path");
  app.add_option("-c,--config", opt.config,
                 "the daemon's config file: its control_socket, or the default path (default: $PREFORKD_CONFIG, "
                 "else the only *.toml in /etc/preforkd)")
      ->excludes(socket_opt);
  app.add_flag("--json", opt.json, "print the reply as a JSON document");
  app.add_option("--timeout", opt.timeout, "how long to wait (default 10m; reload waits until done, stop until the master exited, 90s; check 2s)");
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("preforkctl ") + version);
  app.fallthrough();  // `preforkctl status --json` as well as `preforkctl --json status`

  struct Command {
    const char* name;
    const char* help;
    const char* args_help;  // nullptr: takes no arguments
  };
  const Command commands[] = {
      {"status", "master and one row per worker: slot, pid, state, restarts, uptime, RSS, CPU%", nullptr},
      {"reload", "re-read and validate the config, then apply it; waits until done", nullptr},
      {"scale", "change the worker count: N, +N or -N", "N, +N or -N"},
      {"restart", "rolling restart of all workers or the given slots", "all (the default) or slot numbers"},
      {"stop", "graceful stop of the workers and the master", nullptr},
      {"check", "exit 0 when every worker slot has a ready worker, 1 when not (a probe; --timeout 2s)", nullptr},
      {"upgrade", "replace the master's program in place with the binary now at its path (same pid, workers and sockets)", nullptr},
  };
  for (const auto& c : commands) {
    auto* sub = app.add_subcommand(c.name, c.help);
    sub->callback([&opt, name = c.name] { opt.command = name; });
    if (c.args_help != nullptr) sub->add_option("args", opt.args, c.args_help);
  }
  // logs has options of its own; they become the protocol's words (control::parse_logs_args).
  bool follow = false;
  std::string lines;
  auto* logs = app.add_subcommand("logs", "the workers' recent output kept by the master (worker.log_buffer): the last "
                                          "10 lines of each slot, or N with -n; -f follows");
  logs->add_flag("-f,--follow", follow, "keep printing new lines until interrupted or the master stops");
  logs->add_option("-n,--lines", lines, "lines per slot (default 10, at most 10000)");
  logs->add_option("slots", opt.args, "slot numbers (default: every slot)");
  logs->callback([&opt, &follow, &lines] {
    opt.command = "logs";
    if (follow) opt.args.insert(opt.args.begin(), "-f");
    if (!lines.empty()) opt.args.insert(opt.args.begin(), {"-n", lines});
  });
  // After the subcommands, so that they do not inherit it: a stray word must be an error.
  app.allow_extras();
  if (const auto exit_now = parse_command_line(app, argc, argv)) return *exit_now;

  if (const auto extra = app.remaining(); !extra.empty()) {
    const bool is_command = opt.command.empty() && !extra.front().starts_with('-');
    return fail(exit_usage, (is_command ? "unknown command '" : "unexpected argument '") + extra.front() + "'");
  }
  if (opt.command.empty())
    return fail(exit_usage, "give a command: status, reload, scale, restart, stop, check, upgrade or logs");

  // What to send: the command line in the protocol's own terms, checked before connecting.
  // check is preforkctl's own: a status request judged here.
  const bool is_check = opt.command == "check";
  auto request = control::request_from_args(is_check ? "status" : opt.command, opt.args);
  if (!request) return fail(exit_usage, request.error());
  std::string why;
  if (opt.timeout.empty())
    opt.timeout = opt.command == "stop" ? default_stop_timeout : is_check ? default_check_timeout : default_timeout;
  const auto timeout = parse_duration(opt.timeout, &why);
  if (!timeout || timeout->count() == 0) {
    return fail(exit_usage, "--timeout: " + (timeout ? std::string("must be more than 0s") : why));
  }

  // Where to send it: the socket given, or the one the daemon's config leads to.
  std::string path = opt.socket;
  if (path.empty() && opt.config.empty()) {
    // As preforkd@NAME is run: $PREFORKD_CONFIG, else the one config in /etc/preforkd.
    const char* dir_env = std::getenv("PREFORKD_CONFIG_DIR");
    const std::string dir = dir_env != nullptr && *dir_env != '\0' ? dir_env : ctl::default_config_dir;
    const ctl::ConfigChoice chosen = ctl::choose_config(std::getenv("PREFORKD_CONFIG"), dir, ctl::toml_files_in(dir));
    if (!chosen.error.empty()) return fail(exit_usage, chosen.error);
    opt.config = chosen.path;
  }
  if (path.empty()) {
    const auto env = [](const char* name) -> const char* { return std::getenv(name); };
    const ctl::SocketLookup found = ctl::find_control_socket(opt.config, env, ::geteuid());
    path = ctl::pick_existing(found.candidates);
    // The daemon still runs on what it read before; say why FILE was not used.
    if (!found.fallback.empty()) std::fprintf(stderr, "preforkctl: %s '%s'\n", found.fallback.c_str(), path.c_str());
  }

  if (request->command == control::Request::Command::stop) return stop(path, *timeout, opt.json);
  if (is_check) return check(path, *timeout, opt.json);
  if (request->command == control::Request::Command::logs) return ctl::run_logs(path, *request, *timeout, opt.json);

  // One request, one reply.
  auto line = ctl::exchange(path, control::encode_request(*request), *timeout);
  if (!line) return fail(exit_unreachable, line.error());
  auto reply = control::parse_reply(*line);
  if (!reply) return fail(exit_failed, "'" + path + "': " + reply.error());

  if (opt.json) {
    std::printf("%s\n", reply->body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return reply->ok ? exit_ok : exit_failed;
  }
  if (!reply->ok) return fail(exit_failed, reply->error);
  if (request->command == control::Request::Command::status) {
    auto status = control::parse_status(reply->body);
    if (!status) return fail(exit_failed, status.error());
    const auto colour = ctl::colour_for(STDOUT_FILENO, std::getenv("NO_COLOR"));
    std::fputs(ctl::render_status(*status, colour).c_str(), stdout);
    return exit_ok;
  }
  print_confirmation(*reply, opt.command);
  return exit_ok;
}
