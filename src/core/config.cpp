#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <preforkd/core/config.hpp>
#include <preforkd/core/limits.hpp>
#include <preforkd/core/message_text.hpp>
#include <system_error>

#include "config_reader.hpp"

namespace preforkd {

using namespace config_detail;

namespace {

constexpr std::size_t max_config_bytes = limits::config_bytes;

constexpr std::array<std::string_view, 3> root_keys{"preforkd", "worker", "listen"};
constexpr std::array<std::string_view, 9> daemon_keys{"control_socket", "control_mode",  "control_group",
                                                      "log_level",      "log_format",    "worker_output",
                                                      "worker_cgroups", "metrics_listen", "ebpf"};

constexpr std::array<Choice<LogLevel>, 5> log_levels{{{"trace", LogLevel::trace},
                                                      {"debug", LogLevel::debug},
                                                      {"info", LogLevel::info},
                                                      {"warn", LogLevel::warn},
                                                      {"error", LogLevel::error}}};
constexpr std::array<Choice<LogFormat>, 2> log_formats{{{"text", LogFormat::text}, {"json", LogFormat::json}}};
constexpr std::array<Choice<WorkerOutput>, 2> worker_outputs{
    {{"log", WorkerOutput::log}, {"inherit", WorkerOutput::inherit}}};
constexpr std::array<Choice<WorkerCgroups>, 3> worker_cgroup_choices{
    {{"auto", WorkerCgroups::automatic}, {"off", WorkerCgroups::off}, {"on", WorkerCgroups::on}}};
constexpr std::array<Choice<EbpfUse>, 3> ebpf_choices{
    {{"auto", EbpfUse::automatic}, {"off", EbpfUse::off}, {"on", EbpfUse::on}}};

// sizeof(sockaddr_un::sun_path) minus the terminating NUL.
constexpr std::size_t max_socket_path = 107;

void read_control_socket(const Section& s, DaemonConfig& out) {
  const Field f = s.field("control_socket");
  const auto path = read_string(s.diag(), f);
  if (!path) return;
  // preforkctl --config reads the same path from its own working directory, so a relative
  // path would point the two programs at different sockets.
  if (!path->empty() && path->front() != '/') {
    report(s.diag(), f, fmt::format("must be an absolute path, got {}", quoted(*path)));
  } else if (path->size() > max_socket_path) {
    report(s.diag(), f,
           fmt::format("is {} bytes long; a unix socket path can have at most {}", path->size(), max_socket_path));
  } else {
    out.control_socket = *path;
  }
}

void read_control_mode(const Section& s, DaemonConfig& out) {
  const Field f = s.field("control_mode");
  if (f.node == nullptr) return;
  const auto* text = f.node->as_string();
  if (text == nullptr) {
    report(s.diag(), f, fmt::format("expected a string of octal digits such as \"0660\", got {}", type_name(*f.node)));
    return;
  }
  const std::string& digits = text->get();
  mode_t mode = 0;
  bool ok = !digits.empty() && digits.size() <= 4;
  for (const char c : digits) {
    ok = ok && c >= '0' && c <= '7';
    mode = mode * 8 + static_cast<mode_t>(c - '0');
  }
  if (!ok || mode > 0777) {
    report(
        s.diag(), f,
        fmt::format("must be an octal file mode from \"0000\" to \"0777\" such as \"0660\", got {}", quoted(digits)));
    return;
  }
  out.control_mode = mode;
}

// A TCP address like a [[listen]] one; "" (or no key) leaves the endpoint off.
void read_metrics_listen(const Section& s, DaemonConfig& out) {
  const Field f = s.field("metrics_listen");
  const auto text = read_string(s.diag(), f);
  if (!text || text->empty()) return;
  std::string why;
  const auto address = parse_address(*text, &why);
  if (!address) {
    report(s.diag(), f, fmt::format("invalid address {}: {}", quoted(*text), why));
  } else if (address->family == AddressFamily::unix_path) {
    report(s.diag(), f, fmt::format(R"(must be a TCP address such as "127.0.0.1:9464", got {})", quoted(*text)));
  } else {
    out.metrics_listen = *text;
  }
}

void read_root(const toml::table& root, Config& config, int usable_cpus, Diagnostics& diag) {
  const Section top(root, "", diag);
  top.reject_unknown(root_keys);

  const Field daemon = top.field("preforkd");
  if (daemon.node != nullptr) {
    if (const auto* t = daemon.node->as_table()) {
      read_daemon(Section(*t, "preforkd", diag), config.daemon);
    } else {
      report(diag, daemon, fmt::format("expected a table ([preforkd]), got {}", type_name(*daemon.node)));
    }
  }

  const Field worker = top.field("worker");
  if (worker.node == nullptr) {
    report(diag, worker, "required table [worker] is missing; it needs at least command = [\"/path/to/server\"]");
  } else if (const auto* t = worker.node->as_table()) {
    read_worker(Section(*t, "worker", diag), usable_cpus, config.worker);
  } else {
    report(diag, worker, fmt::format("expected a table ([worker]), got {}", type_name(*worker.node)));
  }

  read_listeners(diag, top.field("listen"), config.listeners);
}

}  // namespace

namespace config_detail {

void read_daemon(const Section& s, DaemonConfig& out) {
  s.reject_unknown(daemon_keys);
  read_control_socket(s, out);
  read_control_mode(s, out);
  const Field group = s.field("control_group");
  if (auto v = read_string(s.diag(), group)) {
    out.control_group = *v;
    check_group(s.diag(), group, *v);
  }
  if (auto v = read_choice(s.diag(), s.field("log_level"), log_levels)) out.log_level = *v;
  if (auto v = read_choice(s.diag(), s.field("log_format"), log_formats)) out.log_format = *v;
  if (auto v = read_choice(s.diag(), s.field("worker_output"), worker_outputs)) out.worker_output = *v;
  if (auto v = read_choice(s.diag(), s.field("worker_cgroups"), worker_cgroup_choices)) out.worker_cgroups = *v;
  const Field ebpf = s.field("ebpf");
  if (auto v = read_choice(s.diag(), ebpf, ebpf_choices)) {
    out.ebpf = *v;
    // "on" makes the start fail without eBPF: --check says so now rather than at start.
    const SystemLookup* lookup = s.diag().lookup();
    if (*v == EbpfUse::on && lookup != nullptr && lookup->ebpf_problem) {
      if (auto problem = lookup->ebpf_problem()) report(s.diag(), ebpf, *problem);
    }
  }
  read_metrics_listen(s, out);
}

}  // namespace config_detail

namespace {


}  // namespace

std::string ConfigError::to_string() const {
  std::string out = one_line(file);
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += ": ";
  if (!key.empty()) out += one_line(key) + ": ";
  return out + one_line(message);
}

ConfigResult parse_config(std::string_view text, const std::string& file, int usable_cpus,
                          const SystemLookup* lookup) {
  Diagnostics diag(file, lookup);
  // Bounded before toml++ sees the text: its parser recurses once per level of nesting.
  if (text.size() > max_config_bytes) {
    diag.add({}, "", fmt::format("larger than {} bytes; is this the right file?", max_config_bytes));
    return {std::nullopt, std::move(diag).in_file_order()};
  }
  if (auto shape = check_shape(text, limits::config_depth)) {
    diag.add(shape->where, "", std::move(shape->message));
    return {std::nullopt, std::move(diag).in_file_order()};
  }
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(file));
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    diag.add({static_cast<int>(begin.line), static_cast<int>(begin.column)}, "", std::string(e.description()));
    return {std::nullopt, std::move(diag).in_file_order()};
  }
  Config config;
  config.path = file;
  read_root(root, config, usable_cpus, diag);
  if (!diag.empty()) return {std::nullopt, std::move(diag).in_file_order()};
  return {std::move(config), {}};
}

ConfigResult load_config(const std::string& file, int usable_cpus, const SystemLookup* lookup) {
  const auto cannot_read = [&](std::string why) {
    return ConfigResult{std::nullopt, {ConfigError{file, 0, 0, "", "cannot read: " + why}}};
  };
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) return cannot_read(std::generic_category().message(errno));
  std::string text;
  char buf[64 * 1024];
  while (true) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
    text.append(buf, n);
    if (text.size() > max_config_bytes) {
      return cannot_read(fmt::format("larger than {} bytes; is this the right file?", max_config_bytes));
    }
    if (n < sizeof buf) break;
  }
  // fopen() succeeds on a directory; the read then fails with EISDIR.
  if (std::ferror(f.get())) return cannot_read(std::generic_category().message(errno));
  ConfigResult result = parse_config(text, file, usable_cpus, lookup);
  // The env files are read only once the config is valid: their paths come from it.
  if (result.config) load_env_files(*result.config, result.errors);
  if (!result.errors.empty()) result.config.reset();
  return result;
}

const char* to_string(LogLevel v) {
  switch (v) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "?";
}

const char* to_string(RestartMode v) {
  switch (v) {
    case RestartMode::always:
      return "always";
    case RestartMode::on_failure:
      return "on-failure";
    case RestartMode::never:
      return "never";
  }
  return "?";
}

const char* to_string(ListenMode v) {
  switch (v) {
    case ListenMode::reuseport:
      return "reuseport";
    case ListenMode::shared:
      return "shared";
  }
  return "?";
}

}  // namespace preforkd
