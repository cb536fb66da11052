// The master's output log: slots filtered, followers fed each new line, a slow follower's
// lines dropped and counted, a gone follower forgotten, and the follower bound.

#include <preforkd/daemon/endpoints/output_log.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace preforkd;
using namespace preforkd::daemon;
using Pushed = ControlServer::Pushed;

namespace {

// A follower's connection as the log sees it: what it was sent, and what push answers.
struct FakeClient {
  std::vector<nlohmann::json> sent;
  Pushed answer = Pushed::sent;
  ControlServer::Push push() {
    return [this](const nlohmann::json& message) {
      if (answer == Pushed::sent && !message.is_null()) sent.push_back(message);
      return answer;
    };
  }
};

std::vector<std::string> texts(const std::vector<OutputLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.text);
  return out;
}

}  // namespace

TEST_CASE("output log gives the last lines of the slots asked for in reading order", "[output_log]") {
  OutputLog log(64 * 1024);
  log.add(0, 10, OutputStream::out, "a");
  log.add(1, 11, OutputStream::err, "b");
  log.add(0, 10, OutputStream::out, "c");
  CHECK(texts(log.latest({}, 10)) == std::vector<std::string>{"a", "b", "c"});
  CHECK(texts(log.latest({0}, 1)) == std::vector<std::string>{"c"});
  CHECK(texts(log.latest({1}, 10)) == std::vector<std::string>{"b"});
  log.set_capacity(0);
  CHECK(log.latest({}, 10).empty());
}

TEST_CASE("a slow follower has its lines dropped and is told how many when it reads again", "[output_log]") {
  OutputLog log(64 * 1024);
  FakeClient client;
  REQUIRE(log.follow({1}, client.push()));
  log.add(0, 10, OutputStream::out, "not for it");
  log.add(1, 11, OutputStream::out, "one");
  client.answer = Pushed::dropped;  // 1 MiB unread
  log.add(1, 11, OutputStream::out, "two");
  log.add(1, 11, OutputStream::out, "three");
  client.answer = Pushed::sent;
  log.add(1, 11, OutputStream::out, "four");
  REQUIRE(client.sent.size() == 3);
  CHECK(client.sent[0].at("line").at("text") == "one");
  CHECK(client.sent[1] == nlohmann::json{{"dropped", 2}});
  CHECK(client.sent[2].at("line").at("text") == "four");
  // Gone: forgotten at its next line.
  client.answer = Pushed::gone;
  log.add(1, 11, OutputStream::out, "five");
  CHECK(log.followers() == 0);
}

TEST_CASE("output log refuses a follower past its bound unless one has gone", "[output_log]") {
  OutputLog log(64 * 1024);
  std::vector<FakeClient> clients(OutputLog::max_followers + 1);
  for (std::size_t i = 0; i < OutputLog::max_followers; ++i) REQUIRE(log.follow({}, clients[i].push()));
  const auto refused = log.follow({}, clients.back().push());
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == "logs: 16 clients follow already; try again without -f");
  clients.front().answer = Pushed::gone;
  CHECK(log.follow({}, clients.back().push()));
}
