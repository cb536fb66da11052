#include <preforkd/os/cgroup.hpp>

#include <preforkd/os/read_file.hpp>
#include <preforkd/os/sys_error.hpp>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace preforkd::os {
namespace {

constexpr std::string_view master_prefix = "preforkd-";
// How long kill_stale() waits for the processes it killed to be gone before removing
// their cgroups (they are usually gone within a millisecond).
constexpr int stale_wait_ms = 3000;

// A cgroup or /proc file's text; nullopt when it cannot be read (the cgroup or the
// process is gone).
std::optional<std::string> read_text(const std::string& path) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  return std::move(*text);
}

Status write_text(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("open", path);
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n < 0) return errno_error("write", path, err);
  return Ok{};
}

std::vector<pid_t> parse_pids(std::string_view text) {
  std::vector<pid_t> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    pid_t pid = 0;
    if (std::from_chars(line.data(), line.data() + line.size(), pid).ec == std::errc() && pid > 0) out.push_back(pid);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

// The sub-cgroups of `dir` (its subdirectories), by name.
std::vector<std::string> subdirectories(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (e->d_type == DT_DIR) out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

// Every process in `dir` and the cgroups below it.
int count_processes(const std::string& dir) {
  int n = static_cast<int>(parse_pids(read_text(dir + "/cgroup.procs").value_or("")).size());
  for (const auto& sub : subdirectories(dir)) n += count_processes(dir + "/" + sub);
  return n;
}

bool populated(const std::string& dir) { return parse_cgroup_populated(read_text(dir + "/cgroup.events").value_or("")); }

// SIGKILL to every process in `dir` and below: cgroup.kill, or (before Linux 5.14) each pid.
Status kill_all(const std::string& dir) {
  const std::string kill_file = dir + "/cgroup.kill";
  if (::access(kill_file.c_str(), F_OK) == 0) return write_text(kill_file, "1");
  for (pid_t pid : parse_pids(read_text(dir + "/cgroup.procs").value_or("")))
    if (::kill(pid, SIGKILL) < 0 && errno != ESRCH) return errno_error("kill", "pid " + std::to_string(pid));
  for (const auto& sub : subdirectories(dir))
    if (Status s = kill_all(dir + "/" + sub); !s) return s;
  return Ok{};
}

// rmdir, children first; true once `dir` is gone.
bool remove_tree(const std::string& dir) {
  for (const auto& sub : subdirectories(dir)) remove_tree(dir + "/" + sub);
  return ::rmdir(dir.c_str()) == 0 || errno == ENOENT;
}

void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000L};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// A master that is still running: its pid exists and is a preforkd. A pid reused by
// another program since leaves its cgroup stale.
bool master_alive(pid_t pid) {
  if (::kill(pid, 0) < 0 && errno == ESRCH) return false;
  const auto comm = read_text("/proc/" + std::to_string(pid) + "/comm");
  return !comm || comm->rfind("preforkd", 0) == 0;
}

}  // namespace

std::optional<std::string> parse_cgroup2_mount(std::string_view mounts) {
  while (!mounts.empty()) {
    const auto nl = mounts.find('\n');
    std::string_view line = mounts.substr(0, nl);
    mounts.remove_prefix(nl == std::string_view::npos ? mounts.size() : nl + 1);
    // "source mountpoint fstype options dump pass"
    const auto a = line.find(' ');
    if (a == std::string_view::npos) continue;
    const auto b = line.find(' ', a + 1);
    if (b == std::string_view::npos) continue;
    const auto c = line.find(' ', b + 1);
    const std::string_view type = line.substr(b + 1, c == std::string_view::npos ? std::string_view::npos : c - b - 1);
    if (type != "cgroup2") continue;
    const std::string_view raw = line.substr(a + 1, b - a - 1);
    std::string point;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      // The kernel escapes space, tab, newline and backslash as \ooo.
      if (raw[i] == '\\' && i + 3 < raw.size()) {
        int v = 0;
        bool octal = true;
        for (std::size_t k = 1; k <= 3; ++k) {
          const char d = raw[i + k];
          octal = octal && d >= '0' && d <= '7';
          v = v * 8 + (d - '0');
        }
        if (octal) {
          point += static_cast<char>(v);
          i += 3;
          continue;
        }
      }
      point += raw[i];
    }
    return point;
  }
  return std::nullopt;
}

std::optional<std::string> parse_cgroup2_path(std::string_view proc_cgroup) {
  while (!proc_cgroup.empty()) {
    const auto nl = proc_cgroup.find('\n');
    const std::string_view line = proc_cgroup.substr(0, nl);
    if (line.starts_with("0::")) {
      std::string path(line.substr(3));
      if (path.empty() || path.front() != '/') return std::nullopt;
      // A cgroup removed under us reads "/path (deleted)".
      if (path.ends_with(" (deleted)")) return std::nullopt;
      return path;
    }
    if (nl == std::string_view::npos) break;
    proc_cgroup.remove_prefix(nl + 1);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> parse_cpu_stat_usage_usec(std::string_view cpu_stat) {
  constexpr std::string_view key = "usage_usec ";
  std::size_t at = cpu_stat.starts_with(key) ? 0 : cpu_stat.find("\nusage_usec ");
  if (at == std::string_view::npos) return std::nullopt;
  if (at != 0) ++at;
  std::string_view rest = cpu_stat.substr(at + key.size());
  std::uint64_t v = 0;
  if (std::from_chars(rest.data(), rest.data() + rest.size(), v).ec != std::errc()) return std::nullopt;
  return v;
}

std::optional<pid_t> parse_master_cgroup_name(std::string_view name) {
  if (!name.starts_with(master_prefix)) return std::nullopt;
  name.remove_prefix(master_prefix.size());
  pid_t pid = 0;
  const auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc() || ptr != name.data() + name.size() || pid <= 0) return std::nullopt;
  return pid;
}

bool parse_cgroup_populated(std::string_view cgroup_events) {
  return cgroup_events.starts_with("populated 1") || cgroup_events.find("\npopulated 1") != std::string_view::npos;
}

std::vector<pid_t> WorkerCgroup::pids() const { return parse_pids(read_text(path_ + "/cgroup.procs").value_or("")); }

std::optional<std::uint64_t> WorkerCgroup::cpu_usage_usec() const {
  const auto text = read_text(path_ + "/cpu.stat");
  if (!text) return std::nullopt;
  return parse_cpu_stat_usage_usec(*text);
}

Result<Fd> WorkerCgroup::open_directory() const {
  Fd fd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open", path_);
  return fd;
}

Status WorkerCgroup::kill() const { return kill_all(path_); }

bool WorkerCgroup::remove() const { return ::rmdir(path_.c_str()) == 0 || errno == ENOENT; }

Result<std::unique_ptr<CgroupTree>> CgroupTree::create(OwnCgroup existing) {
  const auto mounts = read_file("/proc/self/mounts");
  if (!mounts) return Error{mounts.error()};
  const auto mount = parse_cgroup2_mount(*mounts);
  if (!mount) return Error{"no cgroup2 file system in /proc/self/mounts"};
  const auto own = read_text("/proc/self/cgroup");
  const auto path = own ? parse_cgroup2_path(*own) : std::nullopt;
  if (!path) return Error{"no cgroup2 entry ('0::/…') in /proc/self/cgroup"};
  std::string parent = *mount + (*path == "/" ? "" : *path);
  // Moving a process needs write access to the common ancestor's cgroup.procs too.
  if (::access((parent + "/cgroup.procs").c_str(), W_OK) < 0)
    return errno_error("write", parent + "/cgroup.procs");
  std::string dir = parent + "/" + std::string(master_prefix) + std::to_string(::getpid());
  if (existing == OwnCgroup::adopt && ::access(dir.c_str(), F_OK) == 0)
    return std::unique_ptr<CgroupTree>(new CgroupTree(std::move(parent), std::move(dir)));
  // Left by an earlier master with this same pid: its processes are no longer ours.
  if (::access(dir.c_str(), F_OK) == 0) {
    [[maybe_unused]] Status killed = kill_all(dir);
    for (int waited = 0; populated(dir) && waited < stale_wait_ms; waited += 10) sleep_ms(10);
    remove_tree(dir);
  }
  if (::mkdir(dir.c_str(), 0755) < 0) return errno_error("create", dir);
  if (::access((dir + "/cgroup.procs").c_str(), W_OK) < 0) {
    const int err = errno;
    ::rmdir(dir.c_str());
    return errno_error("write", dir + "/cgroup.procs", err);
  }
  return std::unique_ptr<CgroupTree>(new CgroupTree(std::move(parent), std::move(dir)));
}

CgroupTree::~CgroupTree() {
  // Only empty cgroups go (the spares among them); the processes of a cgroup still
  // populated are not ours to wait for.
  remove_tree(path_);
}

Result<std::unique_ptr<WorkerCgroup>> CgroupTree::make_worker(int slot) {
  // A new name each time: after an upgrade, the cgroups of the workers taken over exist.
  std::string dir;
  for (;;) {
    dir = path_ + "/slot-" + std::to_string(slot) + "." + std::to_string(next_++);
    if (::mkdir(dir.c_str(), 0755) == 0) break;
    if (errno != EEXIST) return errno_error("create", dir);
  }
  return std::make_unique<WorkerCgroup>(dir);
}

Result<std::unique_ptr<WorkerCgroup>> CgroupTree::take_worker(int slot) {
  if (auto spare = spares_.extract(slot)) return std::move(spare.mapped());
  return make_worker(slot);
}

Status CgroupTree::make_spare(int slot) {
  if (spares_.contains(slot)) return Ok{};
  auto made = make_worker(slot);
  if (!made) return Error{made.error()};
  spares_.emplace(slot, std::move(*made));
  return Ok{};
}

void CgroupTree::drop_spares(int from) {
  for (auto it = spares_.lower_bound(from); it != spares_.end();) {
    it->second->remove();
    it = spares_.erase(it);
  }
}

Result<std::unique_ptr<WorkerCgroup>> CgroupTree::adopt_worker(pid_t pid) const {
  const std::string file = "/proc/" + std::to_string(pid) + "/cgroup";
  const auto text = read_file(file);
  if (!text) return Error{text.error()};
  const auto path = parse_cgroup2_path(*text);
  // path_ is the mount point + the cgroup path; compare the cgroup path's tail.
  const std::string own = path_.substr(path_.rfind('/'));
  if (!path || path->find(own + "/") == std::string::npos)
    return Error{"pid " + std::to_string(pid) + " is not in " + path_};
  const std::string dir = path_ + path->substr(path->find(own + "/") + own.size());
  return std::make_unique<WorkerCgroup>(dir);
}

std::vector<StaleCgroup> CgroupTree::kill_stale() const {
  std::vector<StaleCgroup> out;
  const pid_t self = ::getpid();
  for (const auto& name : subdirectories(parent_)) {
    const auto master = parse_master_cgroup_name(name);
    if (!master || *master == self || master_alive(*master)) continue;
    StaleCgroup s;
    s.path = parent_ + "/" + name;
    s.master = *master;
    s.processes = count_processes(s.path);
    if (s.processes > 0) {
      [[maybe_unused]] Status killed = kill_all(s.path);
      for (int waited = 0; populated(s.path) && waited < stale_wait_ms; waited += 10) sleep_ms(10);
    }
    s.removed = remove_tree(s.path);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace preforkd::os
