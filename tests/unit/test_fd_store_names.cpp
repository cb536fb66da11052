// systemd fd store names: building and parsing them, matching inherited sockets to the
// config's listeners, and the FDSTORE / FDSTOREREMOVE messages a change needs.

#include <preforkd/core/fd_store_names.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace preforkd::fd_store;

TEST_CASE("fd store names round-trip and other names are not ours") {
  // Rows of plain strings and ints: GCC 12 at -O3 takes an aggregate table of SocketPlace
  // (a string and an optional) for maybe-uninitialized.
  struct Row {
    const char* listener;
    int slot;  // -1: shared
    const char* name;
  };
  const Row rows[] = {
      {"http", 0, "preforkd.http.0"},
      {"http", 255, "preforkd.http.255"},
      {"admin", -1, "preforkd.admin.shared"},
      {"api.v1-x_y", 3, "preforkd.api.v1-x_y.3"},  // '.' inside the listener name
      {"a.shared", -1, "preforkd.a.shared.shared"},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    SocketPlace place;
    place.listener = r.listener;
    if (r.slot >= 0) place.slot = r.slot;
    CHECK(name_of(place) == std::string(r.name));
    CHECK(parse_name(r.name) == place);
  }
  for (const char* other : {"http", "unknown", "stored", "preforkd.", "preforkd.http", "preforkd..0", "preforkd.http.",
                            "preforkd.http.-1", "preforkd.http.01", "preforkd.http.x", "preforkd.http.1234567890",
                            "Preforkd.http.0", "preforkd:http:0"}) {
    INFO(other);
    CHECK_FALSE(parse_name(other));
  }
  // systemd's FDNAME_MAX is 255: a longer name cannot be stored.
  CHECK(name_of({std::string(246, 'a'), std::nullopt}) == std::nullopt);
  CHECK(name_of({std::string(244, 'a'), 0}) == "preforkd." + std::string(244, 'a') + ".0");  // 255
  CHECK(name_of({std::string(244, 'a'), 10}) == std::nullopt);
}

namespace {

const std::vector<ListenerShape> two = {{"http", true}, {"admin", false}};

// Every socket is what the config asks for, except the inherited indices in `bad`.
SocketCheck passing(std::set<std::size_t> bad = {}) {
  return [bad](std::size_t i, std::size_t) -> std::optional<std::string> {
    if (bad.contains(i)) return "bound elsewhere";
    return std::nullopt;
  };
}

std::vector<std::size_t> dropped_indices(const Matching& m) {
  std::vector<std::size_t> out;
  for (const auto& d : m.dropped) out.push_back(d.inherited);
  return out;
}

}  // namespace

TEST_CASE("inherited sockets are taken by name and slot and check - the rest is dropped or foreign") {
  struct Row {
    const char* what;
    std::vector<std::string> names;
    int slots;
    std::set<std::size_t> bad;
    std::vector<std::vector<std::size_t>> taken;
    std::vector<std::size_t> dropped;
    std::vector<std::size_t> foreign;
  };
  using V = std::vector<std::size_t>;
  const std::vector<Row> rows = {
      {"all of them, any order", {"preforkd.http.1", "preforkd.admin.shared", "preforkd.http.0"}, 2, {}, {{2, 0}, {1}}, {}, {}},
      {"fewer slots stored than configured: a prefix, the rest is bound", {"preforkd.http.0"}, 4, {}, {{0}, {}}, {}, {}},
      {"more slots stored than configured: the last ones are dropped",
       {"preforkd.http.0", "preforkd.http.1", "preforkd.http.2"}, 2, {}, {V{0, 1}, V{}}, {2}, {}},
      {"a gap drops the whole group", {"preforkd.http.0", "preforkd.http.2"}, 4, {}, {V{}, V{}}, {0, 1}, {}},
      {"a failed check in the middle is a gap", {"preforkd.http.0", "preforkd.http.1", "preforkd.http.2"}, 3, {1},
       {V{}, V{}}, {0, 1, 2}, {}},
      {"a failed check of the shared socket", {"preforkd.admin.shared"}, 1, {0}, {V{}, V{}}, {0}, {}},
      {"unknown listener", {"preforkd.gone.0", "preforkd.http.0"}, 1, {}, {V{1}, V{}}, {0}, {}},
      {"mode changed both ways", {"preforkd.http.shared", "preforkd.admin.0"}, 1, {}, {V{}, V{}}, {0, 1}, {}},
      {"a duplicate name", {"preforkd.http.0", "preforkd.http.0"}, 1, {}, {V{0}, V{}}, {1}, {}},
      {"foreign names (.socket units) are left alone", {"http", "unknown", "preforkd.http.0"}, 1, {}, {V{2}, V{}}, {},
       {0, 1}},
      {"nothing inherited", {}, 2, {}, {V{}, V{}}, {}, {}},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    const Matching m = match_inherited(r.names, two, r.slots, passing(r.bad));
    CHECK(m.taken == r.taken);
    CHECK(dropped_indices(m) == r.dropped);
    CHECK(m.foreign == r.foreign);
  }
}

TEST_CASE("a dropped socket says why") {
  const Matching m = match_inherited({"preforkd.gone.0", "preforkd.http.7", "preforkd.admin.shared", "preforkd.http.shared"},
                                     two, 2, passing({2}));
  REQUIRE(m.dropped.size() == 4);
  CHECK(m.dropped[0].why == "the config has no listener 'gone'");
  CHECK(m.dropped[1].why == "slot 7 is beyond the config's 2 slots");
  CHECK(m.dropped[2].why == "bound elsewhere");
  CHECK(m.dropped[3].why == "listener 'http' has one socket per slot now, this one was shared");
  const Matching gap = match_inherited({"preforkd.http.1"}, two, 2, passing());
  REQUIRE(gap.dropped.size() == 1);
  CHECK(gap.dropped[0].why == "slot 0 of listener 'http' is missing from the store, so the order of its group is unknown");
}

TEST_CASE("syncing the store: remove what is gone or changed (highest slot first) - add what is new") {
  struct Row {
    const char* what;
    std::map<std::string, std::uint64_t> stored, wanted;
    SyncPlan plan;
  };
  const std::vector<Row> rows = {
      {"start", {}, {{"preforkd.http.0", 10}, {"preforkd.http.1", 11}}, {{}, {"preforkd.http.0", "preforkd.http.1"}}},
      {"nothing changed", {{"preforkd.http.0", 10}}, {{"preforkd.http.0", 10}}, {}},
      {"scale up", {{"preforkd.http.0", 10}}, {{"preforkd.http.0", 10}, {"preforkd.http.1", 11}}, {{}, {"preforkd.http.1"}}},
      {"scale down, highest first",
       {{"preforkd.http.0", 10}, {"preforkd.http.1", 11}, {"preforkd.http.2", 12}, {"preforkd.http.10", 20}},
       {{"preforkd.http.0", 10}},
       {{"preforkd.http.10", "preforkd.http.2", "preforkd.http.1"}, {}}},
      {"a socket replaced under the same name", {{"preforkd.a.shared", 1}}, {{"preforkd.a.shared", 2}},
       {{"preforkd.a.shared"}, {"preforkd.a.shared"}}},
      {"a listener removed, another added", {{"preforkd.a.shared", 1}}, {{"preforkd.b.0", 2}},
       {{"preforkd.a.shared"}, {"preforkd.b.0"}}},
  };
  for (const auto& r : rows) {
    INFO(r.what);
    CHECK(plan_sync(r.stored, r.wanted) == r.plan);
  }
}

TEST_CASE("fd store: the LISTEN variables apply only to this pid with every fd open and one name each or the open fds are stray",
          "[fd_store]") {
  // Plain strings (nullptr: unset), not optionals in the table: see the first test case.
  struct Case {
    const char* what;
    const char* pid;
    const char* fds;
    const char* names;
    std::vector<int> open;
    int count;
    std::vector<std::string> passed_names;
    const char* ignored;  // nullptr: they apply
    std::vector<int> stray;
  };
  const std::vector<Case> cases = {
      {"nothing passed", nullptr, nullptr, nullptr, {3, 4}, 0, {}, nullptr, {}},
      {"a lone LISTEN_PID", "42", nullptr, nullptr, {3}, 0, {}, nullptr, {}},
      {"two fds for us", "42", "2", "a:b", {3, 4, 7}, 2, {"a", "b"}, nullptr, {}},
      {"no names", "42", "1", nullptr, {3}, 1, {"unknown"}, nullptr, {}},
      {"empty names kept", "42", "3", "a::c", {3, 4, 5}, 3, {"a", "", "c"}, nullptr, {}},
      {"another process's pid", "41", "2", "a:b", {3, 4, 9}, 0, {}, "LISTEN_PID=41 is not preforkd's pid 42", {3, 4}},
      {"a malformed pid", "4x2", "1", nullptr, {3}, 0, {}, "LISTEN_PID=4x2 is not preforkd's pid 42", {3}},
      {"no LISTEN_PID", nullptr, "1", nullptr, {3}, 0, {}, "LISTEN_FDS=1 without LISTEN_PID", {3}},
      {"more fds than open", "42", "3", "a:b:c", {3, 5, 8}, 0, {}, "LISTEN_FDS=3 but fd 4 is not open", {3, 5}},
      {"none open", "42", "2", nullptr, {}, 0, {}, "LISTEN_FDS=2 but fd 3 is not open", {}},
      {"too few names", "42", "2", "a", {3, 4}, 0, {}, "LISTEN_FDNAMES='a' has 1 names for LISTEN_FDS=2", {3, 4}},
      {"too many names", "42", "1", "a:b", {3}, 0, {}, "LISTEN_FDNAMES='a:b' has 2 names for LISTEN_FDS=1", {3}},
      {"a count that is not one", "42", "x", nullptr, {3}, 0, {}, "LISTEN_FDS='x' is not a count of fds", {}},
      {"a zero count", "42", "0", nullptr, {3}, 0, {}, "LISTEN_FDS='0' is not a count of fds", {}},
  };
  const auto value = [](const char* text) {
    return text != nullptr ? std::optional<std::string>(text) : std::optional<std::string>();
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const PassedFds p = passed_fds(ListenEnv{value(c.pid), value(c.fds), value(c.names)}, 42, c.open);
    CHECK(p.count == c.count);
    CHECK(p.names == c.passed_names);
    CHECK(p.ignored.has_value() == (c.ignored != nullptr));
    if (c.ignored != nullptr && p.ignored) CHECK(*p.ignored == c.ignored);
    CHECK(p.stray == c.stray);
  }
}
