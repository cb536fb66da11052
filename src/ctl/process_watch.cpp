#include <preforkd/ctl/process_watch.hpp>

#include <fstream>
#include <sstream>
#include <string>

namespace preforkd::ctl {
namespace {

struct ProcStat {
  char state = '?';
  unsigned long long start = 0;  // field 22, clock ticks since boot
};

// /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses,
// so the fields are counted from its last ')'.
std::optional<ProcStat> read_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  ProcStat out;
  fields >> out.state;  // field 3
  std::string skip;
  for (int field = 4; field < 22; ++field) fields >> skip;
  fields >> out.start;
  if (!fields) return std::nullopt;
  return out;
}

}  // namespace

std::optional<ProcessWatch> ProcessWatch::of(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  const auto stat = read_stat(pid);
  if (!stat || stat->state == 'Z') return std::nullopt;
  return ProcessWatch(pid, stat->start);
}

bool ProcessWatch::exited() const {
  const auto stat = read_stat(pid_);
  return !stat || stat->state == 'Z' || stat->state == 'X' || stat->start != start_;
}

}  // namespace preforkd::ctl
