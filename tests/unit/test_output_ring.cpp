// The per-slot output ring of `preforkctl logs`: its byte bound, oldest lines dropped
// first, lines cut to fit, resizing, and the merge of several slots in reading order.

#include <preforkd/core/output_ring.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace preforkd;

namespace {

OutputLine line(std::uint64_t seq, std::string text, int slot = 0) {
  OutputLine l;
  l.seq = seq;
  l.unix_time = static_cast<double>(seq);
  l.slot = slot;
  l.pid = 100 + slot;
  l.text = std::move(text);
  return l;
}

std::vector<std::string> texts(const std::vector<OutputLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.text);
  return out;
}

// Room for exactly `n` lines of `chars` characters.
std::size_t room_for(std::size_t n, std::size_t chars) { return n * (chars + output_line_overhead); }

}  // namespace

TEST_CASE("output ring keeps lines within its byte bound and drops the oldest first", "[output_ring]") {
  OutputRing ring(room_for(3, 5));
  for (std::uint64_t i = 1; i <= 5; ++i) ring.push(line(i, "line" + std::to_string(i)));
  CHECK(texts(ring.last(10)) == std::vector<std::string>{"line3", "line4", "line5"});
  CHECK(ring.bytes() <= ring.capacity());
  CHECK(ring.dropped() == 2);
}

TEST_CASE("output ring last n gives the newest n oldest first", "[output_ring]") {
  OutputRing ring(room_for(10, 5));
  for (std::uint64_t i = 1; i <= 5; ++i) ring.push(line(i, "line" + std::to_string(i)));
  CHECK(texts(ring.last(2)) == std::vector<std::string>{"line4", "line5"});
  CHECK(texts(ring.last(0)).empty());
}

TEST_CASE("output ring counts empty lines so a flood of them stays bounded", "[output_ring]") {
  OutputRing ring(1024);
  for (std::uint64_t i = 1; i <= 100000; ++i) ring.push(line(i, ""));
  CHECK(ring.size() == 1024 / output_line_overhead);
  CHECK(ring.bytes() <= 1024);
}

TEST_CASE("output ring cuts a line longer than it can hold on a character boundary", "[output_ring]") {
  OutputRing ring(output_line_overhead + 10);
  ring.push(line(1, "0123456789abcdef"));
  REQUIRE(ring.size() == 1);
  CHECK(ring.last(1).front().text == "0123456789");
  // "é" is two bytes: a cut inside it goes back to its start.
  OutputRing utf8(output_line_overhead + 4);
  utf8.push(line(2, "abc\xC3\xA9z"));
  CHECK(utf8.last(1).front().text == "abc");
}

TEST_CASE("output ring of capacity 0 keeps nothing", "[output_ring]") {
  OutputRing ring(0);
  ring.push(line(1, "x"));
  CHECK(ring.size() == 0);
  CHECK(ring.bytes() == 0);
}

TEST_CASE("output ring resized smaller drops the oldest lines and larger keeps them", "[output_ring]") {
  OutputRing ring(room_for(4, 5));
  for (std::uint64_t i = 1; i <= 4; ++i) ring.push(line(i, "line" + std::to_string(i)));
  ring.resize(room_for(2, 5));
  CHECK(texts(ring.last(10)) == std::vector<std::string>{"line3", "line4"});
  ring.resize(room_for(8, 5));
  ring.push(line(5, "line5"));
  CHECK(texts(ring.last(10)) == std::vector<std::string>{"line3", "line4", "line5"});
  ring.resize(0);
  CHECK(ring.size() == 0);
}

TEST_CASE("merge_latest takes the last n of each slot in reading order", "[output_ring]") {
  OutputRing a(room_for(10, 3));
  OutputRing b(room_for(10, 3));
  a.push(line(1, "a-1", 0));
  b.push(line(2, "b-2", 1));
  a.push(line(3, "a-3", 0));
  a.push(line(4, "a-4", 0));
  b.push(line(5, "b-5", 1));
  CHECK(texts(merge_latest({&a, &b}, 2, 1024)) == std::vector<std::string>{"b-2", "a-3", "a-4", "b-5"});
  CHECK(texts(merge_latest({&b}, 1, 1024)) == std::vector<std::string>{"b-5"});
}

TEST_CASE("merge_latest leaves out the oldest lines past its byte bound", "[output_ring]") {
  OutputRing a(room_for(10, 3));
  for (std::uint64_t i = 1; i <= 5; ++i) a.push(line(i, "ab" + std::to_string(i)));
  CHECK(texts(merge_latest({&a}, 10, 7)) == std::vector<std::string>{"ab4", "ab5"});
}
