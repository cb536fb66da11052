// In-place upgrade: the preflight of the new binary and the state across the exec; the
// syscalls are in os/image_exec. Master::upgrade (master_upgrade.cpp) puts them together.

#include <preforkd/daemon/upgrade/upgrade.hpp>

#include <preforkd/core/exit_status.hpp>
#include <preforkd/os/image_exec.hpp>

#include <algorithm>
#include <chrono>

namespace preforkd::daemon {

namespace {

// What the check run may say: its version, its formats, and an error's last line.
constexpr std::size_t preflight_output_bytes = 64 * 1024;

// The last non-empty line of a program's output, for an error message.
std::string last_line(const std::string& output) {
  std::string_view rest(output);
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r')) rest.remove_suffix(1);
  const auto nl = rest.rfind('\n');
  std::string line(nl == std::string_view::npos ? rest : rest.substr(nl + 1));
  if (line.size() > 300) line = line.substr(0, 300) + "...";
  return line;
}

}  // namespace

Result<Preflight> run_preflight(const std::string& binary, const std::string& config, const MasterState& state,
                                Duration deadline) {
  // The state document in a memfd (close-on-exec here; the child gets it as its stdin).
  auto memfd = os::text_memfd("preforkd-preflight-state", encode_master_state(state), os::OnExec::close);
  if (!memfd) return Error{"preflight: " + memfd.error()};
  const auto ran =
      os::run_to_completion({binary, "--config", config, "--check", "--state-format", check_state_option, "0"},
                            memfd->get(), deadline, preflight_output_bytes);
  // A failed wait (the check run reaped elsewhere) refuses the upgrade: never a status of 0.
  if (!ran) return Error{"preflight: " + ran.error()};
  if (ran->end == os::RunEnd::timed_out)
    return Error{"preflight: '" + binary + "' did not finish its check within " + format_duration(deadline)};
  const std::string& output = ran->run.output;
  const ExitStatus status = ran->run.status;
  if (!status.success()) {
    std::string why = "preflight: '" + binary + "' " + describe(status);
    if (const std::string line = last_line(output); !line.empty()) why += ": " + line;
    return Error{why};
  }
  Preflight result;
  result.formats = parse_state_formats(output);
  std::string_view rest(output);
  constexpr std::string_view key = "version: ";
  if (const auto at = rest.find(key); at != std::string_view::npos) {
    rest.remove_prefix(at + key.size());
    result.version = std::string(rest.substr(0, rest.find('\n')));
  }
  if (std::ranges::find(result.formats, master_state_format) == result.formats.end()) {
    std::string read;
    for (int f : result.formats) read.append(read.empty() ? "" : ",").append(std::to_string(f));
    return Error{"preflight: '" + binary + "' does not read state format " + std::to_string(master_state_format) +
                 " (it reads " + (read.empty() ? std::string("none") : read) + ")"};
  }
  return result;
}

Result<MasterState> read_state(int fd) {
  auto text = os::take_handed_text(fd, std::string(resume_option) + " " + std::to_string(fd), max_state_bytes);
  if (!text) return Error{text.error()};
  return decode_master_state(*text);
}

void answer_upgrade_client(int fd, const std::string& line) {
  // The fd came from the old image's event loop: non-blocking. A short deadline: a client
  // that does not read its one reply line is not worth waiting for.
  os::send_line_and_close(fd, line, std::chrono::seconds(2));
}

}  // namespace preforkd::daemon
