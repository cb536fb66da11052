// [worker] env_file: the key (a path or a list of paths) and reading the files it names,
// which load_config does after the TOML is read, at start, at every reload and for --check.

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <preforkd/core/env_file.hpp>
#include <preforkd/core/limits.hpp>
#include <system_error>

#include "config_reader.hpp"

namespace preforkd::config_detail {
namespace {

constexpr std::string_view env_file_example = R"("/etc/app.env" or ["/etc/app.env", "-/etc/app.local.env"])";

void read_entry(const Section& s, const Field& f, WorkerConfig& out) {
  const auto text = read_string(s.diag(), f);
  if (!text) return;
  if (parse_env_file_path(*text).path.empty()) {
    report(s.diag(), f, fmt::format("must name a file such as {}, got {}", env_file_example, quoted(*text)));
    return;
  }
  out.env_files.push_back({*text, f.key, f.place.line, f.place.column});
}

// A path relative to the config file's directory (systemd wants an absolute one; the
// config's directory is what a relative path in a config file means elsewhere).
std::string resolve(const std::string& path, const std::string& config_path) {
  if (path.starts_with('/')) return path;
  const auto slash = config_path.rfind('/');
  if (slash == std::string::npos) return path;
  return config_path.substr(0, slash + 1) + path;
}

// The file's text, or why it cannot be read (with the errno, for a missing optional file).
struct FileText {
  std::string text;
  int error = 0;
  std::string why;
};

FileText read_bounded(const std::string& path) {
  FileText out;
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    out.error = errno;
    out.why = std::generic_category().message(errno);
    return out;
  }
  char buf[64 * 1024];
  while (true) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
    out.text.append(buf, n);
    if (out.text.size() > limits::env_file_bytes) {
      out.error = EFBIG;
      out.why = fmt::format("larger than {} bytes; is this the right file?", limits::env_file_bytes);
      return out;
    }
    if (n < sizeof buf) break;
  }
  // fopen() succeeds on a directory; the read then fails with EISDIR.
  if (std::ferror(f.get())) {
    out.error = errno;
    out.why = std::generic_category().message(errno);
  }
  return out;
}

}  // namespace

void read_env_file(const Section& s, WorkerConfig& out) {
  const Field f = s.field("env_file");
  if (f.node == nullptr) return;
  if (f.node->is_string()) return read_entry(s, f, out);
  const auto* array = f.node->as_array();
  if (array == nullptr) {
    report(s.diag(), f,
           fmt::format("expected a path or a list of paths such as {}, got {}", env_file_example, type_name(*f.node)));
    return;
  }
  if (array->size() > limits::env_files) {
    report(s.diag(), f, fmt::format("has {} files; at most {} are allowed", array->size(), limits::env_files));
    return;
  }
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    read_entry(s, {&item, fmt::format("{}[{}]", f.key, i), place_of(item)}, out);
  }
}

void load_env_files(Config& config, std::vector<ConfigError>& errors) {
  WorkerConfig& w = config.worker;
  w.env_file_vars.clear();
  for (const EnvFileEntry& e : w.env_files) {
    const auto fail = [&](std::string message) {
      errors.push_back(ConfigError{config.path, e.line, e.column, e.key, std::move(message)});
    };
    const EnvFilePath spec = parse_env_file_path(e.entry);
    const std::string path = resolve(spec.path, config.path);
    const FileText file = read_bounded(path);
    if (file.error == ENOENT && spec.optional) continue;
    if (file.error != 0) {
      fail(fmt::format("{}: cannot read: {}{}", one_line(path), file.why,
                       file.error == ENOENT ? fmt::format(" (\"-{}\" makes it optional)", one_line(spec.path)) : ""));
      continue;
    }
    EnvFileParse parsed = parse_env_file(file.text);
    if (parsed.error) {
      fail(fmt::format("{}:{}: {}", one_line(path), parsed.error->line, parsed.error->message));
      continue;
    }
    for (auto& [name, value] : parsed.vars) set_env_var(w.env_file_vars, std::move(name), std::move(value));
    if (w.env_file_vars.size() > limits::env_entries) {
      fail(fmt::format("{}: the env files set more than {} variables", one_line(path), limits::env_entries));
      return;
    }
  }
}

}  // namespace preforkd::config_detail
