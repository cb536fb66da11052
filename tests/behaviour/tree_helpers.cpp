#include "tree_helpers.hpp"

#include <fstream>
#include <sstream>
#include <unistd.h>

namespace bt {

namespace {

std::optional<TreeHello> parse_tree_hello(const HttpResponse& r) {
  if (r.status != 200) return std::nullopt;
  std::istringstream in(r.body);
  std::string word;
  TreeHello h;
  char paren = 0;
  if (!(in >> word) || word != "tree" || !(in >> word) || word != "worker" || !(in >> h.slot)) return std::nullopt;
  if (!(in >> paren >> word) || word != "pid" || !(in >> h.pid)) return std::nullopt;
  if (!(in >> paren >> word) || word != "children") return std::nullopt;
  pid_t child = 0;
  while (in >> child) h.children.push_back(child);
  return h;
}

}  // namespace

std::optional<TreeHello> tree_hello(int port, Ms timeout) {
  // Until the master has bound the port, a connection is refused: ask again.
  std::optional<TreeHello> h;
  wait_until([&] {
    auto r = http_get(port, "/", timeout);
    if (r) h = parse_tree_hello(*r);
    return h.has_value();
  });
  return h;
}

std::string cgroups_unavailable() {
  if (::geteuid() != 0) return "not root";
  std::ifstream mounts("/proc/self/mounts");
  std::string source, point, type, rest;
  while (mounts >> source >> point >> type && std::getline(mounts, rest)) {
    if (type != "cgroup2") continue;
    if (::access((point + "/cgroup.procs").c_str(), W_OK) == 0) return "";
    return "the cgroup2 mount " + point + " is not writable";
  }
  return "no cgroup2 mount";
}

std::string tree_config(int port, const std::string& env, const std::string& worker_cgroups, int count) {
  DemoConfig c;
  c.address = local_address(port);
  c.count = count;
  c.command = {fixture("tree_worker")};
  c.worker = "env = { " + env + " }\n";
  c.preforkd = "worker_cgroups = " + toml_string(worker_cgroups) + "\n";
  return toml(c);
}

}  // namespace bt
