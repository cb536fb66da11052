// worker.cpu_affinity (parsing, the check against the usable CPUs, slot -> CPU) and the
// [[listen]] TCP options defer_accept and fastopen.

#include <preforkd/core/cpu_affinity.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace preforkd;

namespace {

std::string worker(const std::string& rest) { return "[worker]\ncommand = [\"/bin/app\"]\n" + rest; }

ConfigResult parse(const std::string& text, const std::vector<int>* usable = nullptr) {
  SystemLookup lookup;
  if (usable != nullptr) lookup.usable_cpu_list = [usable] { return *usable; };
  return parse_config(text, "app.toml", 2, usable != nullptr ? &lookup : nullptr);
}

std::string first_error(const ConfigResult& r) { return r.errors.empty() ? "" : r.errors.front().to_string(); }

const CpuAffinity automatic{CpuAffinity::Kind::automatic, {}};

}  // namespace

TEST_CASE("cpu_affinity: auto spreads slots over the usable CPUs in order and wraps") {
  const std::vector<int> usable{2, 3, 5};
  CHECK(cpu_for_slot(automatic, usable, 0) == 2);
  CHECK(cpu_for_slot(automatic, usable, 1) == 3);
  CHECK(cpu_for_slot(automatic, usable, 2) == 5);
  CHECK(cpu_for_slot(automatic, usable, 3) == 2);
  CHECK_FALSE(cpu_for_slot(automatic, {}, 0));
  CHECK_FALSE(cpu_for_slot(CpuAffinity{}, usable, 0));  // no pinning
}

TEST_CASE("cpu_affinity: a list gives slot i the entry i mod n whatever the usable set") {
  const CpuAffinity list{CpuAffinity::Kind::list, {4, 0}};
  CHECK(cpu_for_slot(list, {}, 0) == 4);
  CHECK(cpu_for_slot(list, {}, 1) == 0);
  CHECK(cpu_for_slot(list, {}, 2) == 4);
}

TEST_CASE("cpu_affinity: the problem names the first CPU outside the usable set") {
  const CpuAffinity list{CpuAffinity::Kind::list, {0, 7, 9}};
  CHECK(affinity_problem(list, {0, 1, 2, 3}) == "CPU 7 is not in this process's usable set (0-3)");
  CHECK_FALSE(affinity_problem(list, {0, 7, 9}));
  CHECK_FALSE(affinity_problem(automatic, {}));
}

TEST_CASE("cpu_affinity: wrapping around is noted only when workers outnumber the CPUs") {
  CHECK(affinity_wrap_note(automatic, {0, 1}, 3) == "3 workers on 2 CPUs (0-1): slot i shares a CPU with slot i - 2");
  CHECK_FALSE(affinity_wrap_note(automatic, {0, 1}, 2));
  CHECK_FALSE(affinity_wrap_note(CpuAffinity{}, {0, 1}, 8));
  CHECK(affinity_wrap_note(CpuAffinity{CpuAffinity::Kind::list, {3}}, {0, 1, 2, 3}, 2).has_value());
}

TEST_CASE("cpu_affinity: CPU lists print in the kernel's list format") {
  CHECK(cpu_list_text({}).empty());
  CHECK(cpu_list_text({3}) == "3");
  CHECK(cpu_list_text({5, 0, 1, 2, 3, 7}) == "0-3,5,7");
  CHECK(cpu_list_text({1, 1, 2}) == "1-2");
}

TEST_CASE("cpu_affinity: parsed from auto or a list - none by default") {
  auto r = parse(worker(""));
  REQUIRE(r.config);
  CHECK(r.config->worker.cpu_affinity == CpuAffinity{});
  r = parse(worker("cpu_affinity = \"auto\"\n"));
  REQUIRE(r.config);
  CHECK(r.config->worker.cpu_affinity == automatic);
  r = parse(worker("cpu_affinity = [2, 0]\n"));
  REQUIRE(r.config);
  CHECK(r.config->worker.cpu_affinity == CpuAffinity{CpuAffinity::Kind::list, {2, 0}});
}

TEST_CASE("cpu_affinity: mistakes are reported at their place") {
  const std::vector<int> usable{0, 1};
  struct Row {
    std::string line;
    std::string message;
    bool with_usable;
  };
  const Row rows[] = {
      {"cpu_affinity = \"all\"\n",
       R"(app.toml:3:16: worker.cpu_affinity: must be "auto" or a list of CPU numbers such as [0, 2], got "all")", false},
      {"cpu_affinity = []\n",
       R"(app.toml:3:16: worker.cpu_affinity: must be "auto" or a list of CPU numbers such as [0, 2], got [])", false},
      {"cpu_affinity = 1\n",
       R"(app.toml:3:16: worker.cpu_affinity: must be "auto" or a list of CPU numbers such as [0, 2], got an integer)",
       false},
      {"cpu_affinity = [0, -1]\n", "app.toml:3:20: worker.cpu_affinity[1]: must be an integer from 0 to 1023, got -1",
       false},
      {"cpu_affinity = [1, 1]\n", "app.toml:3:20: worker.cpu_affinity[1]: CPU 1 is listed twice", false},
      {"cpu_affinity = [0, 5]\n",
       "app.toml:3:20: worker.cpu_affinity[1]: CPU 5 is not in this process's usable set (0-1)", true},
  };
  for (const Row& row : rows) {
    const auto r = parse(worker(row.line), row.with_usable ? &usable : nullptr);
    INFO(row.line);
    CHECK(first_error(r) == row.message);
  }
  // Without a lookup the list is not checked against the machine.
  CHECK(parse(worker("cpu_affinity = [0, 5]\n")).errors.empty());
}

TEST_CASE("listen options: defer_accept rounds up to seconds - fastopen is a queue length") {
  const std::string base = worker("") + "[[listen]]\naddress = \"127.0.0.1:8080\"\n";
  auto r = parse(base);
  REQUIRE(r.config);
  CHECK(r.config->listeners[0].defer_accept == 0ms);
  CHECK(r.config->listeners[0].fastopen == 0);
  r = parse(base + "defer_accept = \"1500ms\"\nfastopen = 256\n");
  REQUIRE(r.config);
  CHECK(defer_accept_seconds(r.config->listeners[0]) == 2);
  CHECK(r.config->listeners[0].fastopen == 256);
  r = parse(base + "defer_accept = \"1ms\"\n");
  REQUIRE(r.config);
  CHECK(defer_accept_seconds(r.config->listeners[0]) == 1);
}

TEST_CASE("listen options: unix sockets and bad values are reported at their place") {
  const std::string head = worker("") + "[[listen]]\n";
  struct Row {
    std::string text;
    std::string message;
  };
  const Row rows[] = {
      {"address = \"unix:/run/app.sock\"\ndefer_accept = \"1s\"\n",
       R"(app.toml:5:16: listen[0].defer_accept: applies only to TCP listeners, got the unix socket "unix:/run/app.sock")"},
      {"address = \"unix:/run/app.sock\"\nfastopen = 8\n",
       R"(app.toml:5:12: listen[0].fastopen: applies only to TCP listeners, got the unix socket "unix:/run/app.sock")"},
      {"address = \"127.0.0.1:80\"\nfastopen = 65536\n",
       "app.toml:5:12: listen[0].fastopen: must be an integer from 0 to 65535, got 65536"},
      {"address = \"127.0.0.1:80\"\ndefer_accept = \"61m\"\n",
       "app.toml:5:16: listen[0].defer_accept: must be from 0s to 1h, got 1h1m"},
  };
  for (const Row& row : rows) {
    INFO(row.text);
    CHECK(first_error(parse(head + row.text)) == row.message);
  }
}
