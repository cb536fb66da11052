// soak: the master under a long run of everything that changes its state (issue 13):
// worker kills and restarts, scale cycles, reloads alternating good and bad configs, and
// control requests. Prints the master's open fds, RssAnon and live child processes before
// and after; targets: fds equal, RssAnon within 1 MiB, no process left after the stop.
//
// Sizes are flags (the issue's defaults take long on 2 cores):
//   preforkd_bench soak --restarts=N --scale-cycles=N --reloads=N --requests=N

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "bench_common.hpp"
#include "benchmarks.hpp"

namespace bench {

SoakSizes soak_sizes;

namespace {

int open_fds(pid_t pid) {
  int n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

// Processes whose parent is `pid`.
int children_of(pid_t pid) {
  int n = 0;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return -1;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream stat(std::string("/proc/") + e->d_name + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == pid && state != 'Z') ++n;
  }
  ::closedir(d);
  return n;
}

struct Sample {
  int fds = 0;
  long rss_anon_kib = 0;
  int children = 0;
};

Sample sample(pid_t master) {
  return {open_fds(master), proc_status_kib(master, "RssAnon").value_or(-1), children_of(master)};
}

void print_sample(const char* when, const Sample& s) {
  std::printf("  %-28s fds %d, RssAnon %ld KiB, live workers %d\n", when, s.fds, s.rss_anon_kib, s.children);
}

nlohmann::json status(const Preforkd& d) {
  return control_request(d.control_socket(), R"({"cmd":"status"})", 10s);
}

// Slot -> pid of ready workers; waits until `count` are ready (and, when given, none of
// them is `old_pid`).
std::vector<pid_t> wait_ready_workers(const Preforkd& d, int count, pid_t old_pid = -1, Ms deadline = 60s) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    const auto s = status(d);
    std::vector<pid_t> pids;
    bool all = s.at("workers").size() == static_cast<std::size_t>(count);
    for (const auto& w : s.at("workers")) {
      const pid_t pid = json_int(w, "pid", -1);
      all = all && w.value("state", "") == "ready" && pid > 0 && pid != old_pid;
      pids.push_back(pid);
    }
    if (all) return pids;
    std::this_thread::sleep_for(2ms);
  }
  throw Failure("workers did not get ready in time");
}

// `n` status requests, pipelined in batches over one connection.
void status_burst(const std::string& socket_path, int n) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw Failure("cannot connect to the control socket");
  }
  const timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  constexpr int batch = 100;
  const std::string request = "{\"cmd\":\"status\"}\n";
  std::string lines;
  for (int i = 0; i < batch; ++i) lines += request;
  char buf[65536];
  for (int done = 0; done < n;) {
    const int k = std::min(batch, n - done);
    const std::string out = lines.substr(0, request.size() * static_cast<std::size_t>(k));
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) break;
    for (int got = 0; got < k;) {
      const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
      if (r <= 0) {
        ::close(fd);
        throw Failure("control socket closed during the request burst");
      }
      for (ssize_t i = 0; i < r; ++i) got += buf[i] == '\n' ? 1 : 0;
    }
    done += k;
  }
  ::close(fd);
}

}  // namespace

void soak() {
  const SoakSizes& n = soak_sizes;
  Setup setup;
  setup.command = {demo_bin()};
  setup.count = 2;
  // Kills of the same slot back to back must not back off for long, nor give up.
  setup.worker_extra = "backoff_initial = \"1ms\"\nbackoff_max = \"20ms\"\n";
  setup.env = {{"SOAK", "0"}};
  Preforkd daemon(setup);
  daemon.wait_ready();
  setup = daemon.setup();
  const pid_t master = daemon.pid();
  std::printf("  restarts %d, scale cycles %d, reloads %d, requests %d (flags: --restarts= --scale-cycles= "
              "--reloads= --requests=)\n",
              n.restarts, n.scale_cycles, n.reloads, n.requests);
  wait_ready_workers(daemon, 2);
  const Sample before = sample(master);
  print_sample("before", before);

  const std::int64_t t0 = mono_ns();
  for (int i = 0; i < n.restarts; ++i) {
    const auto pids = wait_ready_workers(daemon, 2);
    const pid_t victim = pids[static_cast<std::size_t>(i % 2)];
    ::kill(victim, SIGKILL);
    wait_ready_workers(daemon, 2, victim);
  }
  const std::int64_t t1 = mono_ns();
  for (int i = 0; i < n.scale_cycles; ++i) {
    for (const int target : {3, 2}) {
      const auto reply =
          control_request(daemon.control_socket(), R"({"cmd":"scale","count":)" + std::to_string(target) + "}", 30s);
      if (!reply.value("ok", false)) daemon.fail("scale failed: " + reply.dump());
      wait_ready_workers(daemon, target);
    }
  }
  const std::int64_t t2 = mono_ns();
  int good = 0, bad = 0;
  for (int i = 0; i < n.reloads; ++i) {
    const bool ok = i % 2 == 0;
    if (ok) {
      setup.env["SOAK"] = std::to_string(i);
      daemon.rewrite(setup);
    } else {
      std::ofstream(daemon.config_path() + ".bad") << to_toml(setup) << "\ncount_typo = 0\n"
                                                   << std::string(40000, '[') << "\n";
      std::rename((daemon.config_path() + ".bad").c_str(), daemon.config_path().c_str());
    }
    const auto reply = control_request(daemon.control_socket(), R"({"cmd":"reload"})", 60s);
    if (reply.value("ok", false) != ok) daemon.fail("reload " + std::to_string(i) + ": unexpected " + reply.dump());
    (ok ? good : bad) += 1;
    wait_ready_workers(daemon, 2);
  }
  daemon.rewrite(setup);
  const std::int64_t t3 = mono_ns();
  const Sample after_changes = sample(master);
  status_burst(daemon.control_socket(), n.requests);
  const std::int64_t t4 = mono_ns();
  // Let the last connection close on the master's side.
  std::this_thread::sleep_for(200ms);
  wait_ready_workers(daemon, 2);
  const Sample after = sample(master);

  report("restarts (SIGKILL, replaced, ready)", std::to_string(n.restarts) + " in " +
                                                    fmt_ms(ns_to_ms(t1 - t0)));
  report("scale cycles 2 -> 3 -> 2", std::to_string(n.scale_cycles) + " in " + fmt_ms(ns_to_ms(t2 - t1)));
  report("reloads good / bad", std::to_string(good) + " / " + std::to_string(bad) + " in " + fmt_ms(ns_to_ms(t3 - t2)));
  report("status requests (pipelined)", std::to_string(n.requests) + " in " + fmt_ms(ns_to_ms(t4 - t3)));
  print_sample("after restarts/scale/reload", after_changes);
  print_sample("after the requests", after);
  report("master fds before -> after", std::to_string(before.fds) + " -> " + std::to_string(after.fds), "equal");
  report("master RssAnon before -> after",
         std::to_string(before.rss_anon_kib) + " -> " + std::to_string(after.rss_anon_kib) + " KiB", "within 1024 KiB");

  // Stop, and count what is left.
  daemon.log().close_write_end();
  ::kill(master, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (children_of(master) > 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  report("live workers after the stop", std::to_string(children_of(master)), "0");
}

}  // namespace bench
