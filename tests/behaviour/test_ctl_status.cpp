// preforkctl status: the master, one row per worker and the listeners, as JSON and as a
// table; found through --socket or --config; an unreachable daemon exits 69; many
// clients asking at once all get answers.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <latch>
#include <regex>

#include "control_helpers.hpp"

using namespace bt;
using nlohmann::json;

namespace {

json parse_json(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  INFO("preforkctl printed: " << text);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

}  // namespace

TEST_CASE("status --json shows the master and every worker and the listeners", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 3}));
  REQUIRE(wait_workers_ready(d, 3, 0));
  REQUIRE(distinct_workers(port, 3).size() == 3);

  const CtlResult r = ctl(d, {"status", "--json"});
  INFO("stdout: " << r.out << "\nstderr: " << r.err << "\nlog: " << d.log());
  REQUIRE(r.exit_code == 0);
  const json s = parse_json(r.out);

  const json& m = s.at("master");
  CHECK(m.at("pid").get<int>() == d.pid());
  CHECK(m.at("generation").get<int>() == 0);
  CHECK_FALSE(m.at("version").get<std::string>().empty());
  CHECK(m.at("config").get<std::string>() == d.config_path());
  CHECK(m.at("uptime_s").get<double>() >= 0.0);

  const json& workers = s.at("workers");
  REQUIRE(workers.size() == 3);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    const json& w = workers[i];
    INFO("worker " << w.dump());
    CHECK(w.at("slot").get<int>() == static_cast<int>(i));
    const pid_t pid = w.at("pid").get<int>();
    CHECK(pid > 0);
    CHECK(pid == worker_pid(d.pid(), static_cast<int>(i)));
    CHECK(w.at("state").get<std::string>() == "ready");
    CHECK(w.at("restarts").get<int>() == 0);
    CHECK(w.at("uptime_s").get<double>() >= 0.0);
    CHECK(w.at("rss_bytes").get<long long>() > 0);
    CHECK(w.at("cpu_percent").is_number());
    CHECK(w.at("cpu_percent").get<double>() >= 0.0);
    REQUIRE(w.contains("last_exit"));
    CHECK(w.at("last_exit").is_null());  // nothing has exited yet
  }

  const json& listeners = s.at("listeners");
  REQUIRE(listeners.size() == 1);
  CHECK(listeners[0].at("name").get<std::string>() == "http");
  CHECK(listeners[0].at("address").get<std::string>() == local_address(port));
  CHECK(listeners[0].at("mode").get<std::string>() == "reuseport");

  stop_cleanly(d);
}

TEST_CASE("status shows the restart count and last exit of a worker that died", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  const auto before = wait_workers_ready(d, 2, 0);
  REQUIRE(before);
  const auto old_pids = pids_in(*before);
  REQUIRE(old_pids[1] > 0);

  ::kill(old_pids[1], SIGKILL);
  std::optional<json> after;
  REQUIRE(wait_until([&] {
    after = wait_workers_ready(d, 2, 0, 5s);
    return after && pids_in(*after)[1] != old_pids[1];
  }));

  const json& w1 = after->at("workers")[1];
  INFO(w1.dump());
  CHECK(w1.at("restarts").get<int>() == 1);
  REQUIRE(w1.at("last_exit").is_object());
  CHECK(w1.at("last_exit").at("signal").get<int>() == SIGKILL);
  const json& w0 = after->at("workers")[0];
  CHECK(w0.at("pid").get<int>() == old_pids[0]);
  CHECK(w0.at("restarts").get<int>() == 0);
  CHECK(w0.at("last_exit").is_null());

  stop_cleanly(d);
}

TEST_CASE("status prints a table with a row per worker and no colour when not on a terminal", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 3}));
  const auto s = wait_workers_ready(d, 3, 0);
  REQUIRE(s);
  const auto pids = pids_in(*s);

  const CtlResult r = ctl(d, {"status"});
  INFO("stdout:\n" << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find('\033') == std::string::npos);  // stdout is a pipe: no escapes
  CHECK(r.out.find("(pid " + std::to_string(d.pid()) + ")") != std::string::npos);
  CHECK(r.out.find("generation 0") != std::string::npos);
  for (int slot = 0; slot < 3; ++slot) {
    const std::regex row("(^|\\n)" + std::to_string(slot) + " +" +
                         std::to_string(pids[static_cast<std::size_t>(slot)]) + " +ready +0 ");
    CHECK(std::regex_search(r.out, row));
  }
  // Exactly one row per worker: no fourth slot.
  CHECK_FALSE(std::regex_search(r.out, std::regex("(^|\\n)3 +[0-9]+ +")));
  CHECK(r.out.find(local_address(port)) != std::string::npos);
  CHECK(r.out.find("reuseport") != std::string::npos);

  stop_cleanly(d);
}

TEST_CASE("preforkctl --config finds the control socket", "[control]") {
  const int port = free_port();

  SECTION("the default socket, under $RUNTIME_DIRECTORY as the daemon has it") {
    Daemon d(toml({.address = local_address(port), .count = 2}));
    REQUIRE(wait_workers_ready(d, 2, 0));
    const CtlResult r = run_ctl({"--config", d.config_path(), "status", "--json"}, ctl_deadline,
                                {"RUNTIME_DIRECTORY=" + d.dir().path()});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(parse_json(r.out).at("master").at("pid").get<int>() == d.pid());
    stop_cleanly(d);
  }

  SECTION("control_socket set in the file") {
    TempDir sockets;
    const std::string path = sockets.file("ctl.sock");
    Daemon d(toml({.address = local_address(port), .count = 2, .preforkd = "control_socket = " + toml_string(path)}));
    REQUIRE(wait_until([&] { return control_request(path, R"({"cmd":"status"})").has_value(); }));
    // No $RUNTIME_DIRECTORY here: only the file can lead preforkctl to the socket.
    const CtlResult r =
        run_ctl({"--config", d.config_path(), "status", "--json"}, ctl_deadline, {"RUNTIME_DIRECTORY="});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    const json s = parse_json(r.out);
    CHECK(s.at("master").at("pid").get<int>() == d.pid());
    CHECK(s.at("workers").size() == 2);
    stop_cleanly(d);
  }
}

TEST_CASE("an unreachable daemon makes preforkctl exit 69 and name the socket", "[control]") {
  TempDir dir;

  SECTION("no socket file") {
    const std::string path = dir.file("missing.sock");
    const CtlResult r = run_ctl({"--socket", path, "status"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 69);
    CHECK(r.err.find(path) != std::string::npos);
  }

  SECTION("a socket file nobody listens on") {
    const std::string path = dir.file("dead.sock");
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    ::close(fd);  // the file stays; connecting to it is refused
    const CtlResult r = run_ctl({"--socket", path, "--json", "status"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 69);
    CHECK(r.err.find(path) != std::string::npos);
  }
}

TEST_CASE("200 clients asking for status at once all get answers", "[control]") {
  const int port = free_port();
  Daemon d(toml({.address = local_address(port), .count = 2}));
  REQUIRE(wait_workers_ready(d, 2, 0));

  constexpr int clients = 200;
  const std::string path = control_socket(d);
  std::vector<int> answered(clients, 0);
  std::vector<std::string> problems(clients);
  std::latch start(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();  // all at once
      ControlConnection c(path, 30s);
      if (!c.connected()) {
        problems[static_cast<std::size_t>(i)] = "connect: " + std::string(std::strerror(c.connect_errno()));
        return;
      }
      if (!c.send("{\"cmd\":\"status\"}\n")) {
        problems[static_cast<std::size_t>(i)] = "send failed";
        return;
      }
      const auto line = c.read_line(30s);
      if (!line) {
        problems[static_cast<std::size_t>(i)] = "no reply";
        return;
      }
      const auto j = json::parse(*line, nullptr, false);
      if (!j.is_discarded() && j.value("ok", false) && j.at("master").value("pid", -1) == d.pid() &&
          j.at("workers").size() == 2) {
        answered[static_cast<std::size_t>(i)] = 1;
      } else {
        problems[static_cast<std::size_t>(i)] = "reply: " + line->substr(0, 200);
      }
    });
  }
  for (auto& t : threads) t.join();

  int ok = 0;
  std::string first_problems;
  for (int i = 0; i < clients; ++i) {
    ok += answered[static_cast<std::size_t>(i)];
    if (!problems[static_cast<std::size_t>(i)].empty() && first_problems.size() < 2000)
      first_problems += "client " + std::to_string(i) + ": " + problems[static_cast<std::size_t>(i)] + "\n";
  }
  INFO(first_problems);
  CHECK(ok == clients);
  // And the master still serves afterwards.
  CHECK(status_of(d));

  stop_cleanly(d);
}
