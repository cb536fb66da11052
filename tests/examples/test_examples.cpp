// Every example under examples/ is a test, against the real server from Debian's (or
// nodesource's/npm's) package: see example_runner.hpp for what is checked.

#include <catch2/catch.hpp>

#include "example_runner.hpp"

using examples::Example;
using examples::run_example;

TEST_CASE("lighttpd", "[examples]") {
  run_example({.name = "lighttpd", .programs = {"/usr/sbin/lighttpd"}, .install_hint = "lighttpd"});
}

TEST_CASE("gunicorn", "[examples]") {
  run_example({.name = "gunicorn",
               .programs = {"/usr/bin/gunicorn"},
               .install_hint = "gunicorn",
               .slow_path = "/slow"});
}

TEST_CASE("uwsgi", "[examples]") {
  run_example({.name = "uwsgi",
               .programs = {"/usr/bin/uwsgi-core", "/usr/lib/uwsgi/plugins/python3_plugin.so"},
               .install_hint = "uwsgi-core and uwsgi-plugin-python3",
               .slow_path = "/slow"});
}

TEST_CASE("haproxy", "[examples]") {
  run_example({.name = "haproxy", .programs = {"/usr/sbin/haproxy"}, .install_hint = "haproxy"});
}

TEST_CASE("nginx", "[examples]") {
  run_example({.name = "nginx", .programs = {"/usr/sbin/nginx"}, .install_hint = "nginx-light (or nginx)"});
}

TEST_CASE("node", "[examples]") {
  run_example({.name = "node", .programs = {"/usr/bin/node"}, .install_hint = "nodejs", .slow_path = "/slow"});
}

TEST_CASE("python-asyncio", "[examples]") {
  run_example({.name = "python-asyncio",
               .programs = {"/usr/bin/python3"},
               .install_hint = "python3",
               .slow_path = "/slow"});
}

TEST_CASE("go", "[examples]") {
  run_example({.name = "go",
               .programs = {"/usr/bin/go"},
               .install_hint = "golang-go",
               .slow_path = "/slow",
               .go_build = true});
}
