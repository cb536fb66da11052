// preforkctl status as a table: human units, aligned rows, colour only when asked.

#include <preforkd/ctl/status_table.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace preforkd;
using namespace preforkd::control;
using preforkd::ctl::format_bytes;
using preforkd::ctl::format_uptime;

namespace {

StatusSnapshot sample() {
  StatusSnapshot s;
  s.master = {4121, "0.1.0", "/etc/preforkd/app.toml", 2, 11532, 2, 3, ""};
  s.workers = {
      {0, 4122, "ready", 2, 0, 192, 12'897'485, 0.54, std::nullopt, ""},
      {1, 4130, "starting", 2, 1, 3.5, 2'097'152, 12.26, LastExitInfo{"exited with status 1", 1, 0, 0, 75}, ""},
      {2, -1, "backoff", 2, 5, 0, 0, 0, LastExitInfo{"exited on signal 9", -1, 9, 0, 2}, ""},
  };
  s.listeners = {{"http", "127.0.0.1:8080", "reuseport", {0, 17, -1}},
                 {"admin", "unix:/run/app.sock", "shared", {3}}};
  s.workers[0].activity = "waiting";
  s.workers[1].activity = "busy";
  s.workers[1].queued = 2;
  s.workers[0].pss_bytes = 9'437'184;
  s.workers[0].uss_bytes = 8'388'608;
  s.workers[0].processes = 2;
  s.workers[1].crashes = 1;
  s.workers[2].crashes = 4;
  s.workers[2].replacements = 1;
  s.listeners[0].balance = "load";
  s.memory = summarize_memory(s.workers);
  s.memory.master_uss_bytes = 419'430;
  return s;
}

}  // namespace

TEST_CASE("format_uptime shows the two largest units", "[status_table]") {
  CHECK(format_uptime(0) == "0s");
  CHECK(format_uptime(-3) == "0s");
  CHECK(format_uptime(0.9) == "0s");
  CHECK(format_uptime(45.7) == "45s");
  CHECK(format_uptime(60) == "1m");
  CHECK(format_uptime(192) == "3m12s");
  CHECK(format_uptime(3600) == "1h");
  CHECK(format_uptime(7512) == "2h5m");
  CHECK(format_uptime(273'600) == "3d4h");
  CHECK(format_uptime(86400 * 400) == "400d");
}

TEST_CASE("format_bytes uses binary units with one decimal", "[status_table]") {
  CHECK(format_bytes(0) == "0 B");
  CHECK(format_bytes(812) == "812 B");
  CHECK(format_bytes(1024) == "1.0 KiB");
  CHECK(format_bytes(12'897'485) == "12.3 MiB");
  CHECK(format_bytes(1024ull * 1024 * 1024 * 3 / 2) == "1.5 GiB");
  CHECK(format_bytes(1024ull * 1024 * 1024 - 1) == "1.0 GiB");
}

TEST_CASE("render_status without colour: master line and workers and listeners", "[status_table]") {
  const std::string expected =
      "preforkd 0.1.0 (pid 4121)  config /etc/preforkd/app.toml  generation 2  up 3h12m  workers 2/3 ready\n"
      "\n"
      "SLOT  PID   STATE     RESTARTS  CRASHES  REPLACED  UPTIME  RSS       PSS      USS      PROCS  CPU%  LOAD     QUEUED  LAST EXIT\n"
      "0     4122  ready     0         0        0         3m12s   12.3 MiB  9.0 MiB  8.0 MiB  2      0.5   waiting  0       -\n"
      "1     4130  starting  1         1        0         3s      2.0 MiB   -        -        -      12.3  busy     2       exited with status 1, 1m15s ago\n"
      "2     -     backoff   5         4        1         -       -         -        -        -      -     -        -       exited on signal 9, 2s ago\n"
      "2 workers: 8.0 MiB private + 1.0 MiB shared (PSS 9.0 MiB); master 409.6 KiB private\n"
      "\n"
      "LISTENER  ADDRESS             MODE              ACCEPT QUEUE  REFUSED\n"
      "http      127.0.0.1:8080      reuseport (load)  0:0 1:17 2:-  0\n"
      "admin     unix:/run/app.sock  shared            3             0\n";
  CHECK(ctl::render_status(sample(), ctl::Colour::off) == expected);
}

TEST_CASE("render_status says when a listener refuses connections (fail_fast_after)", "[status_table]") {
  StatusSnapshot s = sample();
  s.listeners[0].refusing = true;
  s.listeners[0].refused_total = 12;
  s.listeners[1].refused_total = 3;
  const std::string table = ctl::render_status(s, ctl::Colour::off);
  CHECK(table.find("0:0 1:17 2:-  12, refusing: no worker ready\n") != std::string::npos);
  CHECK(table.find("3             3\n") != std::string::npos);
}

TEST_CASE("render_status says why the eBPF balancer of a listener fell back to the sampler", "[status_table]") {
  StatusSnapshot s = sample();
  s.listeners[0].balanced_by = "ebpf";
  CHECK(ctl::render_status(s, ctl::Colour::off).find("eBPF balancer failed") == std::string::npos);
  s.listeners[0].balanced_by = "sampler";
  s.listeners[0].ebpf_error = "failed to add to the eBPF steering map 'socket of slot 2': out of memory";
  const std::string table = ctl::render_status(s, ctl::Colour::off);
  CHECK(table.find("reuseport (load, sampler)") != std::string::npos);
  CHECK(table.find("\nlistener 'http': the eBPF balancer failed, the master's sampler balances it: failed to add to "
                   "the eBPF steering map 'socket of slot 2': out of memory\n") != std::string::npos);
}

TEST_CASE("render_status shows the workers' STATUS= text when there is some", "[status_table]") {
  auto s = sample();
  s.master.notify_status = "3 workers";
  s.workers[0].notify_status = "accepting";
  const std::string table = ctl::render_status(s, ctl::Colour::off);
  CHECK(table.find("status: 3 workers\n") != std::string::npos);
  CHECK(table.find("  LAST EXIT                        STATUS\n") != std::string::npos);
  CHECK(table.find("  -                                accepting\n") != std::string::npos);
}

TEST_CASE("render_status shows why a slot was last recycled - once one was", "[status_table]") {
  auto s = sample();
  CHECK(ctl::render_status(s, ctl::Colour::off).find("RECYCLED") == std::string::npos);
  s.workers[0].recycled = "memory 612 MiB > 512 MiB";
  const std::string table = ctl::render_status(s, ctl::Colour::off);
  CHECK(table.find("  RECYCLED\n") != std::string::npos);
  CHECK(table.find("  memory 612 MiB > 512 MiB\n") != std::string::npos);
}

TEST_CASE("render_status with colour paints states and keeps columns aligned", "[status_table]") {
  const std::string table = ctl::render_status(sample(), ctl::Colour::on);
  CHECK(table.find("\033[32mready\033[0m     0") != std::string::npos);
  CHECK(table.find("\033[33mstarting\033[0m  1") != std::string::npos);
  CHECK(table.find("\033[33mbackoff\033[0m   5") != std::string::npos);
  CHECK(table.find("\033[1mSLOT\033[0m  ") != std::string::npos);
  auto failed = sample();
  failed.workers[2].state = "failed";
  CHECK(ctl::render_status(failed, ctl::Colour::on).find("\033[31mfailed\033[0m") != std::string::npos);
}

TEST_CASE("colour_for honours NO_COLOR and terminals", "[status_table]") {
  CHECK(ctl::colour_for(-1, nullptr) == ctl::Colour::off);  // not a terminal
  CHECK(ctl::colour_for(0, "1") == ctl::Colour::off);
}

TEST_CASE("memory_summary: private + shared (PSS) of the workers and the master", "[status_table]") {
  MemorySummary m;
  CHECK(ctl::memory_summary(m).empty());  // nothing sampled yet
  m.workers = 8;
  m.uss_bytes = 412ull * 1024 * 1024;
  m.pss_bytes = 508ull * 1024 * 1024;
  m.shared_bytes = m.pss_bytes - m.uss_bytes;
  CHECK(ctl::memory_summary(m) == "8 workers: 412.0 MiB private + 96.0 MiB shared (PSS 508.0 MiB)");
  m.master_uss_bytes = 400 * 1024;
  CHECK(ctl::memory_summary(m) ==
        "8 workers: 412.0 MiB private + 96.0 MiB shared (PSS 508.0 MiB); master 400.0 KiB private");
  m.workers = 1;
  CHECK(ctl::memory_summary(m).starts_with("1 worker: "));
}
