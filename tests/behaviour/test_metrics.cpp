// [preforkd] metrics_listen: GET /metrics from the master's loop. It passes promtool
// without a warning and follows the naming guide (counters by reason at 0, start times), its
// values are status --json's, bad requests get 400/404/405, silent, oversized and many
// clients do not stop it (nor the control socket), a bind error stops the start, and a
// real Prometheus server scrapes it.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "control_helpers.hpp"
#include "../support/skip.hpp"

using namespace bt;
using nlohmann::json;

namespace {

std::string metrics_config(int port, int metrics_port, int count) {
  return toml({.address = local_address(port),
               .count = count,
               .preforkd = "metrics_listen = \"" + local_address(metrics_port) + "\"\n"});
}

// A TCP connection to 127.0.0.1:port, blocking with timeouts.
class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  [[nodiscard]] bool connected() const { return fd_ >= 0; }
  bool send(const std::string& data) {
    return fd_ >= 0 && ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // Everything until the server closes (EOF or reset), within `timeout`; nullopt if it
  // does not close in time. `reset` tells whether it ended with a reset.
  std::optional<std::string> read_all(Ms timeout = 10s, bool* reset = nullptr) {
    std::string out;
    const auto end = std::chrono::steady_clock::now() + timeout;
    char buf[16384];
    while (true) {
      const auto left = std::chrono::duration_cast<Ms>(end - std::chrono::steady_clock::now());
      if (left <= Ms::zero()) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return out;
      if (n < 0) {
        if (errno == EINTR) continue;
        if (reset != nullptr) *reset = true;
        return out;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

struct Scrape {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

std::optional<Scrape> parse_response(const std::string& raw) {
  const auto head_end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.1 ") || head_end == std::string::npos) return std::nullopt;
  Scrape s;
  s.status = std::atoi(raw.c_str() + 9);
  std::istringstream head(raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  while (std::getline(head, line)) {
    if (line.ends_with('\r')) line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    s.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  s.body = raw.substr(head_end + 4);
  return s;
}

std::optional<Scrape> request(int port, const std::string& raw_request, Ms timeout = 10s) {
  Client c(port);
  if (!c.connected() || !c.send(raw_request)) return std::nullopt;
  const auto raw = c.read_all(timeout);
  if (!raw) return std::nullopt;
  return parse_response(*raw);
}

std::optional<Scrape> scrape(int port, Ms timeout = 10s) {
  return request(port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n", timeout);
}

// name{labels} -> value, for the samples of `name` (labels as written).
std::map<std::string, double> samples(const std::string& body, const std::string& name) {
  std::map<std::string, double> out;
  std::istringstream in(body);
  for (std::string l; std::getline(in, l);) {
    if (l.starts_with('#') || !(l.starts_with(name + "{") || l.starts_with(name + " "))) continue;
    const auto space = l.rfind(' ');
    out[l.substr(name.size(), space - name.size())] = std::stod(l.substr(space + 1));
  }
  return out;
}

// Runs a shell command line to completion; its exit status and output.
std::pair<int, std::string> shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

bool have(const char* program) { return ::access(program, X_OK) == 0; }

}  // namespace

TEST_CASE("metrics: GET /metrics passes promtool and its values are status --json's", "[metrics]") {
  const int port = free_port(), metrics_port = free_port();
  Daemon d(metrics_config(port, metrics_port, 3));
  const auto status = wait_workers_ready(d, 3, 0);
  REQUIRE(status);
  INFO(d.log());
  REQUIRE(d.wait_log("metrics at http://" + local_address(metrics_port) + "/metrics"));

  const auto s = scrape(metrics_port);
  REQUIRE(s);
  INFO(s->body);
  CHECK(s->status == 200);
  CHECK(s->headers.at("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(s->headers.at("connection") == "close");
  CHECK(s->headers.at("content-length") == std::to_string(s->body.size()));

  // promtool (Debian's prometheus package) parses it and lints the names.
  if (!have("/usr/bin/promtool")) {
    if (!testsupport::skips_allowed()) FAIL("promtool is not installed (scripts/install-deps.sh installs it)");
    WARN("skipped (PREFORKD_TEST_ALLOW_SKIP=1): promtool is not installed, so the scrape is not linted");
  } else {
    d.dir().write("scrape.txt", s->body);
    const auto [rc, out] = shell("/usr/bin/promtool check metrics < " + d.dir().file("scrape.txt"));
    INFO("promtool: " << out);
    CHECK(rc == 0);
    CHECK(out.empty());  // not even a lint warning
  }

  // The guide's rules that promtool does not check: every counter shows each reason at 0
  // before any event, times are start times (never an age), sizes are _bytes.
  for (int slot = 0; slot < 3; ++slot) {
    for (const char* reason : {"reload", "restart", "scale", "memory", "lifetime"}) {
      INFO("slot " << slot << " reason " << reason);
      CHECK(samples(s->body, "preforkd_worker_replaced_total")
                .at("{slot=\"" + std::to_string(slot) + "\",reason=\"" + reason + "\"}") == 0);
    }
    CHECK(samples(s->body, "preforkd_worker_crashes_total").at("{slot=\"" + std::to_string(slot) + "\"}") == 0);
  }
  CHECK(s->body.find("# TYPE preforkd_listener_refused_total counter\n") != std::string::npos);
  CHECK(samples(s->body, "preforkd_listener_refused_total").at("{listener=\"http\"}") == 0);
  CHECK(s->body.find("uptime") == std::string::npos);
  CHECK(s->body.find("status field") == std::string::npos);
  CHECK(s->body.find("preforkd_listener_receive_buffer_bytes{") != std::string::npos);
  {
    std::istringstream in(s->body);
    for (std::string l; std::getline(in, l);) {
      if (!l.starts_with("# TYPE ")) continue;
      INFO(l);
      CHECK(l.substr(7, l.find(' ', 7) - 7).ends_with("_total") == l.ends_with(" counter"));
    }
  }

  // The same workers as status --json: one pid per slot, all ready.
  const auto now = status_of(d);
  REQUIRE(now);
  const auto pids = pids_in(*now);
  const auto pid_samples = samples(s->body, "preforkd_worker_pid");
  REQUIRE(pid_samples.size() == pids.size());
  for (std::size_t slot = 0; slot < pids.size(); ++slot) {
    INFO("slot " << slot);
    CHECK(pid_samples.at("{slot=\"" + std::to_string(slot) + "\"}") == pids[slot]);
  }
  const auto ready = samples(s->body, "preforkd_worker_state");
  double ready_sum = 0;
  for (const auto& [labels, v] : ready)
    if (labels.find("state=\"ready\"") != std::string::npos) ready_sum += v;
  CHECK(ready_sum == 3);
  CHECK(samples(s->body, "preforkd_workers_desired").at("") == 3);
  CHECK(samples(s->body, "preforkd_workers_ready").at("") == 3);
  CHECK(samples(s->body, "preforkd_master_pid").at("") == d.pid());
  CHECK(samples(s->body, "preforkd_master_generation").at("") == 0);
  // The master's process metrics, as a client library's process collector has them.
  const double wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(samples(s->body, "process_resident_memory_bytes").at("") > 1'000'000);
  CHECK(samples(s->body, "process_virtual_memory_bytes").at("") >= samples(s->body, "process_resident_memory_bytes").at(""));
  CHECK(samples(s->body, "process_cpu_seconds_total").at("") >= 0);
  CHECK(samples(s->body, "process_open_fds").at("") > 3);
  CHECK(samples(s->body, "process_max_fds").at("") >= samples(s->body, "process_open_fds").at(""));
  const double started = samples(s->body, "process_start_time_seconds").at("");
  CHECK(started > wall - 600);
  CHECK(started <= wall + 1);
  CHECK(std::abs(samples(s->body, "preforkd_start_time_seconds").at("") - started) < 2);
  for (const auto& [labels, t] : samples(s->body, "preforkd_worker_start_time_seconds")) {
    INFO(labels);
    CHECK(t >= started - 1);
    CHECK(t <= wall + 1);
  }
  CHECK(samples(s->body, "preforkd_worker_start_time_seconds").size() == 3);
  CHECK(samples(s->body, "preforkd_build_info").at("{version=\"" + now->at("master").at("version").get<std::string>() +
                                                   "\"}") == 1);
  for (const auto& [labels, rss] : samples(s->body, "preforkd_worker_rss_bytes")) CHECK(rss > 0);
  CHECK(samples(s->body, "preforkd_listener_queued_connections").size() == 3);

  // A reload counts; a worker killed shows up as a restart in both.
  REQUIRE(ctl(d, {"reload"}).exit_code == 0);
  ::kill(pids[1], SIGKILL);
  REQUIRE(wait_until([&] {
    const auto st = status_of(d);
    return st && st->at("workers").at(1).at("restarts").get<int>() == 1 &&
           st->at("workers").at(1).at("state").get<std::string>() == "ready";
  }));
  const auto after = scrape(metrics_port);
  REQUIRE(after);
  const auto st = status_of(d);
  REQUIRE(st);
  CHECK(samples(after->body, "preforkd_master_reloads_total").at("") == 1);
  CHECK(samples(after->body, "preforkd_master_reload_failures_total").at("") == 0);
  CHECK(samples(after->body, "preforkd_worker_restarts_total").at("{slot=\"1\"}") == 1);
  CHECK(samples(after->body, "preforkd_worker_pid").at("{slot=\"1\"}") == st->at("workers").at(1).at("pid").get<int>());
  CHECK(samples(after->body, "preforkd_master_reloads_total").at("") == st->at("master").at("reloads").get<int>());
  // The kill is a crash of slot 1; the unchanged reload replaced nobody, as status says.
  CHECK(samples(after->body, "preforkd_worker_replaced_total").at("{slot=\"0\",reason=\"reload\"}") ==
        st->at("workers").at(0).at("replaced_for").value("reload", 0));
  CHECK(samples(after->body, "preforkd_worker_crashes_total").at("{slot=\"1\"}") == 1);
  stop_cleanly(d);
}

TEST_CASE("metrics: 400 and 404 and 405 and an oversized request while status keeps answering", "[metrics]") {
  const int port = free_port(), metrics_port = free_port();
  Daemon d(metrics_config(port, metrics_port, 1));
  REQUIRE(wait_workers_ready(d, 1, 0));
  INFO(d.log());

  const auto not_found = request(metrics_port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(not_found);
  CHECK(not_found->status == 404);
  const auto not_allowed = request(metrics_port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(not_allowed);
  CHECK(not_allowed->status == 405);
  CHECK(not_allowed->headers.at("allow") == "GET, HEAD");
  const auto garbage = request(metrics_port, "\x16\x03\x01 hello there\r\n\r\n");
  REQUIRE(garbage);
  CHECK(garbage->status == 400);
  const auto head = request(metrics_port, "HEAD /metrics HTTP/1.0\r\n\r\n");
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());

  // Over 8 KiB of head without its end: answered 431 and closed, not read on.
  {
    Client c(metrics_port);
    REQUIRE(c.connected());
    c.send("GET /metrics HTTP/1.1\r\n");
    const std::string header = "X-Filler: " + std::string(1000, 'a') + "\r\n";
    for (int i = 0; i < 9; ++i) c.send(header);
    const auto raw = c.read_all(10s);
    REQUIRE(raw);  // closed, within the deadline
    CHECK((raw->empty() || raw->starts_with("HTTP/1.1 431 ")));
  }
  // Meanwhile and after, the master answers status and scrapes.
  CHECK(status_of(d));
  const auto s = scrape(metrics_port);
  REQUIRE(s);
  CHECK(s->status == 200);
  stop_cleanly(d);
}

namespace {

// A GET /metrics head of exactly `bytes` bytes, its blank line included.
std::string head_of(std::size_t bytes) {
  std::string head = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  while (head.size() + 2 < bytes) {
    const std::size_t room = bytes - 2 - head.size();
    const std::size_t line = room <= 1006 ? room : 1000;
    head += "X: " + std::string(line - 5, 'a') + "\r\n";
  }
  return head + "\r\n";
}

// The answer to `head` sent in one write, or trickled in small writes. The pause between
// writes is the trickle itself (so the server reads the pieces one by one), not a wait.
std::optional<Scrape> send_head(int port, const std::string& head, bool trickle) {
  Client c(port);
  if (!c.connected()) return std::nullopt;
  if (!trickle) {
    if (!c.send(head)) return std::nullopt;
  } else {
    for (std::size_t at = 0; at < head.size(); at += 256) {
      if (!c.send(head.substr(at, 256))) return std::nullopt;
      std::this_thread::sleep_for(1ms);
    }
  }
  const auto raw = c.read_all(10s);
  if (!raw) return std::nullopt;
  return parse_response(*raw);
}

}  // namespace

TEST_CASE("metrics: one request head limit of 8 KiB whether the head comes in one write or trickled", "[metrics]") {
  const int port = free_port(), metrics_port = free_port();
  Daemon d(metrics_config(port, metrics_port, 1));
  REQUIRE(wait_workers_ready(d, 1, 0));
  INFO(d.log());
  struct Case {
    std::size_t bytes;
    int status;
  };
  // 8,192 bytes is the limit itself; 8,999 and 12,279 are the two heads.
  for (const Case c : {Case{8000, 200}, Case{8192, 200}, Case{8193, 431}, Case{8999, 431}, Case{12279, 431}}) {
    for (const bool trickle : {false, true}) {
      INFO("a head of " << c.bytes << " bytes " << (trickle ? "trickled" : "in one write"));
      const std::string head = head_of(c.bytes);
      REQUIRE(head.size() == c.bytes);
      const auto answer = send_head(metrics_port, head, trickle);
      REQUIRE(answer);
      CHECK(answer->status == c.status);
    }
  }
  stop_cleanly(d);
}

TEST_CASE("metrics: silent and trickling clients do not block a scrape or the master", "[metrics]") {
  const int port = free_port(), metrics_port = free_port();
  Daemon d(metrics_config(port, metrics_port, 2));
  REQUIRE(wait_workers_ready(d, 2, 0));
  INFO(d.log());

  // One client that connects and says nothing, one that sends half a request.
  Client silent(metrics_port), half(metrics_port);
  REQUIRE(silent.connected());
  REQUIRE(half.connected());
  REQUIRE(half.send("GET /metr"));
  const auto s = scrape(metrics_port, 5s);
  REQUIRE(s);
  CHECK(s->status == 200);
  CHECK(status_of(d, 5s));

  // More silent clients than the server serves at once (64): the oldest make room, and a
  // scrape is still answered at once.
  std::vector<std::unique_ptr<Client>> crowd;
  for (int i = 0; i < 80; ++i) {
    crowd.push_back(std::make_unique<Client>(metrics_port));
    REQUIRE(crowd.back()->connected());
  }
  const auto crowded = scrape(metrics_port, 5s);
  REQUIRE(crowded);
  CHECK(crowded->status == 200);
  CHECK(status_of(d, 5s));

  // The silent one is closed after its deadline (10 s), without an answer.
  bool reset = false;
  const auto gone = silent.read_all(30s, &reset);
  CHECK(gone);
  stop_cleanly(d);
}

TEST_CASE("metrics: an address that cannot be bound stops the start - naming it", "[metrics]") {
  const int port = free_port(), metrics_port = free_port();
  // Someone else has the port.
  const int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(taken >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(metrics_port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(taken, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(taken, 8) == 0);

  Daemon d(metrics_config(port, metrics_port, 1));
  const auto code = d.wait_exit();
  ::close(taken);
  INFO(d.log());
  REQUIRE(code);
  CHECK(*code == 1);
  CHECK(d.log().find("cannot bind metrics_listen '" + local_address(metrics_port) + "': address already in use") !=
        std::string::npos);
  CHECK(no_process_left(d.pid()));
}

TEST_CASE("metrics: a real Prometheus server scrapes preforkd and answers a query for the worker count",
          "[metrics][prometheus]") {
  if (!have("/usr/bin/prometheus")) {
    SKIP_OR_FAIL("prometheus is not installed (scripts/install-deps.sh installs it)");
  }
  const int port = free_port(), metrics_port = free_port(), prom_port = free_port();
  Daemon d(metrics_config(port, metrics_port, 3));
  REQUIRE(wait_workers_ready(d, 3, 0));

  TempDir prom("preforkd-prometheus");
  prom.write("prometheus.yml", "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                               "scrape_configs:\n  - job_name: preforkd\n    static_configs:\n"
                               "      - targets: ['" + local_address(metrics_port) + "']\n");
  const std::string log = prom.file("prometheus.log");
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    const std::string config = "--config.file=" + prom.file("prometheus.yml");
    const std::string storage = "--storage.tsdb.path=" + prom.file("data");
    const std::string listen = "--web.listen-address=" + local_address(prom_port);
    ::execl("/usr/bin/prometheus", "prometheus", config.c_str(), storage.c_str(), listen.c_str(), nullptr);
    ::_exit(127);
  }
  const auto read_log = [&] {
    std::ifstream in(log);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };

  // Prometheus scrapes every second; the query answers once a scrape has landed.
  std::string last;
  const bool answered = wait_until(
      [&] {
        const auto r = http_get(prom_port, "/api/v1/query?query=sum(preforkd_worker_state%7Bstate%3D%22ready%22%7D)",
                                5s);
        if (!r || r->status != 200) return false;
        last = r->body;
        const auto j = json::parse(r->body, nullptr, false);
        if (j.is_discarded() || j.value("status", "") != "success") return false;
        const auto& result = j.at("data").at("result");
        return !result.empty() && result[0].at("value").at(1).get<std::string>() == "3";
      },
      60s);
  std::string up;
  if (const auto r = http_get(prom_port, "/api/v1/query?query=up", 5s)) up = r->body;
  ::kill(pid, SIGTERM);
  int wstatus = 0;
  if (!wait_until([&] { return ::waitpid(pid, &wstatus, WNOHANG) == pid; }, 30s)) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &wstatus, 0);
  }
  INFO("last answer: " << last << "\nup: " << up << "\nprometheus log:\n" << read_log() << "\npreforkd log:\n" << d.log());
  CHECK(answered);
  stop_cleanly(d);
}
