// [worker]: what to run, how many, and the policy for readiness, stopping and restarting.
// What a worker may use and how it is watched is config_worker_resources.cpp.

#include <preforkd/core/env_file.hpp>
#include <preforkd/core/limits.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <csignal>

#include "config_reader.hpp"

namespace preforkd::config_detail {
namespace {

constexpr std::array<std::string_view, 27> worker_keys{
    "command",       "count",       "directory",    "user",      "group",           "env",          "env_file", "ready",
    "ready_timeout", "stop_signal", "stop_timeout", "restart",   "backoff_initial", "backoff_max",  "fatal_exit_codes",
    "watchdog",      "max_memory",  "max_lifetime", "max_surge", "cpu_affinity",    "stall_timeout",
    "memory_sample_interval", "log_buffer", "pool", "min_count", "spare", "idle_timeout"};

constexpr std::string_view command_example = R"(["/usr/bin/app", "--flag"])";

constexpr std::array<Choice<RestartMode>, 3> restart_modes{
    {{"always", RestartMode::always}, {"on-failure", RestartMode::on_failure}, {"never", RestartMode::never}}};

constexpr std::array<Choice<int>, 31> signal_names{{
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},   {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},     {"KILL", SIGKILL}, {"USR1", SIGUSR1},
    {"SEGV", SIGSEGV},     {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},   {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU}, {"URG", SIGURG},     {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"PWR", SIGPWR},
    {"SYS", SIGSYS},
}};
// The highest signal number on Linux (SIGRTMAX); NSIG is one past it.
constexpr int max_signal = NSIG - 1;

void read_command(const Section& s, WorkerConfig& out) {
  const Field f = s.field("command");
  if (f.node == nullptr) return s.report_missing("command", command_example);
  const auto* array = f.node->as_array();
  if (array == nullptr) {
    report(s.diag(), f,
           fmt::format("expected an array of strings such as {}, got {}", command_example, type_name(*f.node)));
    return;
  }
  if (array->empty()) {
    report(s.diag(), f, fmt::format("must name the program and its arguments such as {}, got []", command_example));
    return;
  }
  if (!within(s, f, array->size(), limits::command_args, "arguments")) return;
  std::vector<std::string> command;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    const Field element{&item, fmt::format("{}[{}]", f.key, i), place_of(item)};
    if (auto arg = read_string(s.diag(), element)) command.push_back(std::move(*arg));
  }
  if (command.size() != array->size()) return;
  if (command.front().empty()) {
    report(s.diag(), {&*array->get(0), f.key + "[0]", place_of(*array->get(0))}, "the program must not be empty");
    return;
  }
  out.command = std::move(command);
}

void read_count(const Section& s, int usable_cpus, WorkerConfig& out) {
  const Field f = s.field("count");
  if (f.node == nullptr) return;
  if (const auto* text = f.node->as_string(); text != nullptr && text->get() == "auto") {
    out.count = std::clamp(usable_cpus, 1, max_workers);
    out.count_auto = true;
    return;
  }
  if (const auto* n = f.node->as_integer(); n != nullptr && n->get() >= 1 && n->get() <= max_workers) {
    out.count = static_cast<int>(n->get());
    out.count_auto = false;
    return;
  }
  const bool shown = f.node->is_string() || f.node->is_integer();
  report(s.diag(), f,
         fmt::format("must be \"auto\" or an integer from 1 to {}, got {}", max_workers,
                     shown ? value_text(*f.node) : type_name(*f.node)));
}

// How many workers a rolling reload or restart may start beside the ones it replaces.
void read_max_surge(const Section& s, WorkerConfig& out) {
  const Field f = s.field("max_surge");
  if (f.node == nullptr) return;
  if (const auto* n = f.node->as_integer(); n != nullptr && n->get() >= 1 && n->get() <= max_workers) {
    out.max_surge = static_cast<int>(n->get());
    return;
  }
  report(s.diag(), f,
         fmt::format("must be an integer from 1 to {}, got {}", max_workers,
                     f.node->is_integer() ? value_text(*f.node) : type_name(*f.node)));
}

void read_env(const Section& s, WorkerConfig& out) {
  const Field f = s.field("env");
  if (f.node == nullptr) return;
  const auto* table = f.node->as_table();
  if (table == nullptr) {
    report(s.diag(), f,
           fmt::format("expected a table such as {{ APP_ENV = \"production\" }}, got {}", type_name(*f.node)));
    return;
  }
  if (!within(s, f, table->size(), limits::env_entries, "variables")) return;
  std::vector<std::pair<const toml::key*, std::string>> vars;
  for (const auto& [key, node] : *table) {
    const Field var{&node, key_path(f.key, key.str()), place_of(node)};
    const std::string_view name = key.str();
    if (name.empty() || name.find('=') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
      report(s.diag(), {&node, var.key, place_of(key)}, "a variable name must not be empty or contain \"=\" or NUL");
      continue;
    }
    if (env_name_is_reserved(name)) {
      report(s.diag(), {&node, var.key, place_of(key)}, "is set by preforkd for every worker and cannot be set here");
      continue;
    }
    if (auto value = read_string(s.diag(), var)) vars.emplace_back(&key, std::move(*value));
  }
  // toml++ keeps a table sorted by key; the environment keeps the order of the file.
  std::stable_sort(vars.begin(), vars.end(), [](const auto& a, const auto& b) {
    const Place pa = place_of(*a.first), pb = place_of(*b.first);
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  out.env.clear();
  for (auto& [key, value] : vars) out.env.emplace_back(key->str(), std::move(value));
}

// "immediate", "notify", "accepting", or how long a worker must stay alive to count as ready.
void read_ready(const Section& s, std::optional<Duration> ready_timeout, WorkerConfig& out) {
  static constexpr std::array<std::string_view, 3> kinds{"immediate", "notify", "accepting"};
  const Field f = s.field("ready");
  if (f.node == nullptr) return;
  const auto* text = f.node->as_string();
  if (text != nullptr && text->get() == "immediate") {
    out.ready = {ReadyKind::immediate, Duration::zero()};
    return;
  }
  if (text != nullptr && text->get() == "notify") {
    out.ready = {ReadyKind::notify, Duration::zero()};
    return;
  }
  if (text != nullptr && text->get() == "accepting") {
    out.ready = {ReadyKind::accepting, Duration::zero()};
    return;
  }
  const std::string expected = R"(must be "immediate", "notify", "accepting" or a duration)";
  if (text == nullptr) {
    const bool number = f.node->is_integer() || f.node->is_floating_point();
    report(s.diag(), f,
           fmt::format("{} {}such as \"1s\", got {}", expected, number ? "with a unit " : "",
                       number ? value_text(*f.node) : type_name(*f.node)));
    return;
  }
  std::string why;
  const auto alive = parse_duration(text->get(), &why);
  const bool looks_like_duration = !text->get().empty() && std::isdigit(static_cast<unsigned char>(text->get()[0]));
  if (!alive) {
    // "1x" is a broken duration, "notfiy" a misspelt keyword: explain whichever it is.
    report(s.diag(), f,
           looks_like_duration ? why
                               : fmt::format("{} such as \"1s\", got {}{}", expected, value_text(*f.node),
                                             did_you_mean(text->get(), kinds)));
  } else if (*alive <= Duration::zero()) {
    report(s.diag(), f,
           fmt::format(R"(must be greater than 0s (use "immediate" for no wait), got {})", value_text(*f.node)));
  } else if (ready_timeout && *alive >= *ready_timeout) {
    report(s.diag(), f,
           fmt::format("must be shorter than ready_timeout ({}), got {}", exact_duration(*ready_timeout),
                       value_text(*f.node)));
  } else {
    out.ready = {ReadyKind::alive, *alive};
  }
}

// "SIGTERM", "TERM", "15" or 15.
void read_stop_signal(const Section& s, WorkerConfig& out) {
  const Field f = s.field("stop_signal");
  if (f.node == nullptr) return;
  const std::string expected =
      fmt::format(R"(must be a signal name such as "SIGTERM" or "TERM", or a number from 1 to {})", max_signal);
  if (const auto* n = f.node->as_integer()) {
    if (n->get() >= 1 && n->get() <= max_signal) {
      out.stop_signal = static_cast<int>(n->get());
    } else {
      report(s.diag(), f, fmt::format("{}, got {}", expected, n->get()));
    }
    return;
  }
  const auto* text = f.node->as_string();
  if (text == nullptr) {
    report(s.diag(), f, fmt::format("{}, got {}", expected, type_name(*f.node)));
    return;
  }
  const std::string_view written = text->get();
  const bool prefixed = written.starts_with("SIG");
  const std::string_view name = prefixed ? written.substr(3) : written;
  for (const auto& [signal_name, number] : signal_names) {
    if (signal_name == name) {
      out.stop_signal = number;
      return;
    }
  }
  std::array<std::string_view, signal_names.size()> names;
  std::transform(signal_names.begin(), signal_names.end(), names.begin(), [](const auto& c) { return c.name; });
  const auto match = closest(name, names);
  const std::string hint = match ? fmt::format("; did you mean \"{}{}\"?", prefixed ? "SIG" : "", *match) : "";
  report(s.diag(), f, fmt::format("{}, got {}{}", expected, value_text(*f.node), hint));
}

void read_backoff(const Section& s, WorkerConfig& out) {
  const Field initial_field = s.field("backoff_initial");
  const Field max_field = s.field("backoff_max");
  const auto initial = read_positive_duration(s.diag(), initial_field);
  const auto max = read_positive_duration(s.diag(), max_field);
  if (max) out.backoff_max = *max;
  // A wrong backoff_max is already reported; comparing against the default would mislead.
  if (!initial || (max_field.node != nullptr && !max)) return;
  // Reported on backoff_initial even if backoff_max is the one to change: it is the
  // first of the two in every example.
  if (*initial > out.backoff_max) {
    report(s.diag(), initial_field,
           fmt::format("must not be longer than backoff_max ({}), got {}", exact_duration(out.backoff_max),
                       value_text(*initial_field.node)));
    return;
  }
  out.backoff_initial = *initial;
}

void read_fatal_exit_codes(const Section& s, WorkerConfig& out) {
  const Field f = s.field("fatal_exit_codes");
  if (f.node == nullptr) return;
  const auto* array = f.node->as_array();
  if (array == nullptr) {
    report(s.diag(), f, fmt::format("expected an array of exit codes such as [3, 4], got {}", type_name(*f.node)));
    return;
  }
  if (!within(s, f, array->size(), limits::fatal_exit_codes, "exit codes")) return;
  std::vector<int> codes;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    const Field element{&item, fmt::format("{}[{}]", f.key, i), place_of(item)};
    if (auto code = read_integer(s.diag(), element, 0, 255)) codes.push_back(static_cast<int>(*code));
  }
  if (codes.size() == array->size()) out.fatal_exit_codes = std::move(codes);
}

// With a lookup: the program must exist and be executable, found as at start. A relative
// path without a directory depends on the directory preforkd is started from, which a
// check run elsewhere cannot know: it is left to start-up.
void check_program(const Section& s, const WorkerConfig& out) {
  const SystemLookup* lookup = s.diag().lookup();
  if (lookup == nullptr || !lookup->program_problem || out.command.empty()) return;
  const std::string& program = out.command.front();
  const bool relative_path = program.find('/') != std::string::npos && program.front() != '/';
  if (relative_path && out.directory.empty()) return;
  const auto problem = lookup->program_problem(program, out.directory);
  if (!problem) return;
  const Field f = s.field("command");
  const auto* array = f.node != nullptr ? f.node->as_array() : nullptr;
  const toml::node* first = array != nullptr && !array->empty() ? array->get(0) : f.node;
  report(s.diag(), {first, f.key + "[0]", first != nullptr ? place_of(*first) : f.place},
         fmt::format("cannot run {}: {}", quoted(program), *problem));
}

}  // namespace

void read_worker(const Section& s, int usable_cpus, WorkerConfig& out) {
  s.reject_unknown(worker_keys);
  read_command(s, out);
  read_count(s, usable_cpus, out);
  read_pool(s, out);
  if (auto v = read_string(s.diag(), s.field("directory"))) out.directory = *v;
  const Field user = s.field("user");
  if (auto v = read_string(s.diag(), user)) {
    out.user = *v;
    check_user(s.diag(), user, *v);
  }
  const Field group = s.field("group");
  if (auto v = read_string(s.diag(), group)) {
    out.group = *v;
    check_group(s.diag(), group, *v);
  }
  read_env(s, out);
  read_env_file(s, out);
  // ready is checked against ready_timeout, so that comes first; when ready_timeout is
  // itself wrong, the comparison is skipped rather than made against the default.
  const Field timeout_field = s.field("ready_timeout");
  const auto ready_timeout = read_positive_duration(s.diag(), timeout_field);
  if (ready_timeout) out.ready_timeout = *ready_timeout;
  const bool timeout_usable = ready_timeout || timeout_field.node == nullptr;
  read_ready(s, timeout_usable ? std::optional(out.ready_timeout) : std::nullopt, out);
  read_stop_signal(s, out);
  if (auto v = read_positive_duration(s.diag(), s.field("stop_timeout"))) out.stop_timeout = *v;
  if (auto v = read_choice(s.diag(), s.field("restart"), restart_modes)) out.restart = *v;
  read_backoff(s, out);
  read_fatal_exit_codes(s, out);
  if (auto v = read_duration(s.diag(), s.field("watchdog"))) out.watchdog = *v;
  read_max_surge(s, out);
  read_worker_resources(s, out);
  check_program(s, out);
}

}  // namespace preforkd::config_detail
