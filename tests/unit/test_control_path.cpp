// The default control socket path: one rule for the master and preforkctl.

#include <preforkd/core/control_path.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <string>

using namespace preforkd;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

}  // namespace

TEST_CASE("config_stem is the file name without directory and extension", "[control_path]") {
  CHECK(config_stem("/etc/preforkd/app.toml") == "app");
  CHECK(config_stem("app.toml") == "app");
  CHECK(config_stem("./conf/my.app.toml") == "my.app");
  CHECK(config_stem("/etc/preforkd/app") == "app");
  CHECK(config_stem(".hidden") == ".hidden");
  CHECK(config_stem("") == "preforkd");
  CHECK(config_stem("/") == "preforkd");
}

TEST_CASE("default_control_socket follows systemd then root then the user's runtime dir", "[control_path]") {
  const std::string config = "/etc/preforkd/app.toml";
  // systemd's RuntimeDirectory= wins for everyone; only its first entry is used.
  CHECK(default_control_socket(config, env_of({{"RUNTIME_DIRECTORY", "/run/preforkd"}}), 0) ==
        "/run/preforkd/app.sock");
  CHECK(default_control_socket(config, env_of({{"RUNTIME_DIRECTORY", "/run/a/:/run/b"}}), 1000) ==
        "/run/a/app.sock");
  // Root without systemd.
  CHECK(default_control_socket(config, env_of({{"XDG_RUNTIME_DIR", "/run/user/0"}}), 0) == "/run/preforkd/app.sock");
  // Another user: the XDG runtime dir, else a per-uid directory in /tmp.
  CHECK(default_control_socket(config, env_of({{"XDG_RUNTIME_DIR", "/run/user/1000"}}), 1000) ==
        "/run/user/1000/preforkd/app.sock");
  CHECK(default_control_socket(config, env_of({}), 1000) == "/tmp/preforkd-1000/app.sock");
  // Empty or relative values are not directories to trust.
  CHECK(default_control_socket(config, env_of({{"RUNTIME_DIRECTORY", ""}, {"XDG_RUNTIME_DIR", "run"}}), 1000) ==
        "/tmp/preforkd-1000/app.sock");
  CHECK(default_control_socket(config, EnvLookup{}, 1000) == "/tmp/preforkd-1000/app.sock");
}

TEST_CASE("control_socket_path prefers the config's control_socket", "[control_path]") {
  Config config;
  config.path = "/etc/preforkd/app.toml";
  CHECK(control_socket_path(config, env_of({}), 0) == "/run/preforkd/app.sock");
  config.daemon.control_socket = "/srv/app/ctl.sock";
  CHECK(control_socket_path(config, env_of({{"RUNTIME_DIRECTORY", "/run/x"}}), 0) == "/srv/app/ctl.sock");
}

TEST_CASE("control_socket_candidates also tries root's default", "[control_path]") {
  Config config;
  config.path = "/etc/preforkd/app.toml";
  CHECK(control_socket_candidates(config, env_of({{"XDG_RUNTIME_DIR", "/run/user/1000"}}), 1000) ==
        std::vector<std::string>{"/run/user/1000/preforkd/app.sock", "/run/preforkd/app.sock"});
  CHECK(control_socket_candidates(config, env_of({}), 0) == std::vector<std::string>{"/run/preforkd/app.sock"});
  config.daemon.control_socket = "/srv/app/ctl.sock";
  CHECK(control_socket_candidates(config, env_of({}), 1000) == std::vector<std::string>{"/srv/app/ctl.sock"});
}
