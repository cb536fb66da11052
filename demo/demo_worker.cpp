// preforkd-demo: the demo worker of preforkd, and the fixture of its tests and benchmarks.
//
// A small single-threaded HTTP/1.1 server on a level-triggered epoll loop. It serves the
// sockets handed over by socket activation (sd_listen_fds) and/or binds its own, speaks
// sd_notify (READY=1, WATCHDOG=1, STOPPING=1) and stops gracefully on SIGTERM/SIGINT.
// Hot path per request: recv, parse in place, append the response to a reused buffer, send.

#include <systemd/sd-daemon.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <new>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace {

constexpr size_t kInCap = 16 * 1024;    // largest request head; more gets 431
constexpr size_t kOutHigh = 64 * 1024;  // stop parsing pipelined requests above this much output
constexpr long long kMaxMs = 3'600'000;
constexpr long long kMaxAllocMib = 4096;
constexpr std::string_view kText = "text/plain; charset=utf-8";

const char kUsage[] = R"USAGE(usage: preforkd-demo [OPTIONS]

The demo worker of preforkd: a small single-threaded HTTP/1.1 server. It serves the
sockets passed by socket activation (LISTEN_FDS, fds 3...); with --listen, or when
LISTEN_FDS is absent, it also binds its own (default 127.0.0.1:8080).

Endpoints (GET or HEAD):
  /              "hello from worker <slot> (pid <pid>)"; slot is $PREFORK_WORKER_ID or "-"
  /work?ms=N     burn CPU for N ms (blocks the whole worker), then answer
  /sleep?ms=N    answer after N ms without blocking other connections
  /env           JSON: pid, ppid, slot, environment, listening fds, startup signal state
  /exit?code=N   answer, then exit with code N (default 0)
  /crash         die of SIGSEGV without answering
  /alloc?mb=N    allocate N MiB (at most 4096 in all) and touch every page, kept until
                 exit: grows the worker's private memory, to try worker.max_memory

Options:
  --listen HOST:PORT   bind this address itself (IPv4), besides any LISTEN_FDS
  --reuseport          set SO_REUSEPORT on the socket it binds itself
  --ready-delay-ms N   wait N ms before sending READY=1 (serving meanwhile)
  --no-ready           never send READY=1
  --no-watchdog        never send WATCHDOG=1, even when WATCHDOG_USEC asks for it
  --ignore-term        ignore SIGTERM (SIG_IGN), to test stop_timeout escalation
  --exit-after-ms N    exit by itself N ms after start, with --exit-code
  --exit-code N        exit code of --exit-after-ms (default 1)
  --crash-after-ms N   raise SIGSEGV N ms after start
  --slot-only K        apply --exit-after-ms, --crash-after-ms and --no-ready only
                       when PREFORK_WORKER_ID is K
  --spawn-child        fork a child that sleeps forever (pause()), holding no fds
  --print-stdout       print "demo worker <slot> started (pid <pid>)" to stdout at
                       start and "demo worker <slot> stopping" to stderr at a
                       graceful stop
  -h, --help           print this help

SIGTERM and SIGINT stop gracefully: close the listening sockets, finish in-flight
requests (pending /sleep too), close idle connections, exit 0.
Exit status: 0 stopped, 1 error, 2 usage error, or as asked by /exit and --exit-code.
)USAGE";

int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
constexpr int64_t ms_to_ns(long long ms) { return ms * 1'000'000; }

void warn_errno(const std::string& what) {
    std::fprintf(stderr, "preforkd-demo: %s: %s\n", what.c_str(), std::strerror(errno));
}
[[noreturn]] void die_errno(const std::string& what) { warn_errno(what); std::exit(1); }
[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "preforkd-demo: %s\n", msg.c_str());
    std::exit(1);
}
[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "preforkd-demo: %s (see --help)\n", msg.c_str());
    std::exit(2);
}

bool parse_ll(std::string_view s, long long min, long long max, long long& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && end == s.data() + s.size() && out >= min && out <= max;
}

// ---------------------------------------------------------------- command line

struct Options {
    std::string listen, slot_only;
    bool has_slot_only = false, reuseport = false, no_ready = false, no_watchdog = false;
    bool ignore_term = false, spawn_child = false, print_stdout = false;
    long long ready_delay_ms = 0, exit_after_ms = -1, exit_code = 1, crash_after_ms = -1;
};

Options parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i], value;
        bool inline_value = false;
        if (size_t eq = arg.find('='); arg.starts_with("--") && eq != arg.npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            inline_value = true;
        }
        const std::string name(arg);
        auto need = [&]() -> std::string_view {
            if (inline_value) return value;
            if (i + 1 >= argc) usage_error(name + " needs a value");
            return argv[++i];
        };
        auto number = [&](long long max) {
            long long n = 0;
            std::string_view v = need();
            if (!parse_ll(v, 0, max, n)) usage_error(name + ": not an integer from 0 to " + std::to_string(max) + ": " + std::string(v));
            return n;
        };
        auto flag = [&](bool& f) {
            if (inline_value) usage_error(name + " takes no value");
            f = true;
        };
        if (arg == "-h" || arg == "--help") { std::fputs(kUsage, stdout); std::exit(0); }
        else if (arg == "--listen") o.listen = need();
        else if (arg == "--reuseport") flag(o.reuseport);
        else if (arg == "--ready-delay-ms") o.ready_delay_ms = number(kMaxMs);
        else if (arg == "--no-ready") flag(o.no_ready);
        else if (arg == "--no-watchdog") flag(o.no_watchdog);
        else if (arg == "--ignore-term") flag(o.ignore_term);
        else if (arg == "--exit-after-ms") o.exit_after_ms = number(kMaxMs);
        else if (arg == "--exit-code") o.exit_code = number(255);
        else if (arg == "--crash-after-ms") o.crash_after_ms = number(kMaxMs);
        else if (arg == "--slot-only") { o.slot_only = need(); o.has_slot_only = true; }
        else if (arg == "--spawn-child") flag(o.spawn_child);
        else if (arg == "--print-stdout") flag(o.print_stdout);
        else usage_error("unknown option " + name);
    }
    return o;
}

// ---------------------------------------------------------------- process state

struct StartupSignals {
    bool mask_empty = true;
    std::vector<int> ignored;
};

// Must run first, before anything changes the mask or the dispositions.
StartupSignals capture_signals() {
    StartupSignals s;
    sigset_t mask;
    sigprocmask(SIG_BLOCK, nullptr, &mask);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sigismember(&mask, sig) == 1) s.mask_empty = false;
        struct sigaction sa{};
        if (sigaction(sig, nullptr, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
            s.ignored.push_back(sig);
    }
    return s;
}

// /alloc: memory that stays until the process exits, every page written so it is resident
// and private. Returns the MiB held in all, or -1 past kMaxAllocMib or when out of memory.
long long hold_memory(long long mib) {
    static std::vector<std::unique_ptr<char[]>> held;
    static long long total = 0;
    if (total + mib > kMaxAllocMib) return -1;
    for (long long i = 0; i < mib; ++i) {
        std::unique_ptr<char[]> block(new (std::nothrow) char[1 << 20]);
        if (!block) return -1;
        for (size_t off = 0; off < (1 << 20); off += 4096) block[off] = char(off / 4096 + 1);
        held.push_back(std::move(block));
        ++total;
    }
    return total;
}

[[noreturn]] void crash() {
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);  // a crash loop must not litter core files
    signal(SIGSEGV, SIG_DFL);
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_UNBLOCK, &segv, nullptr);
    raise(SIGSEGV);
    std::abort();
}

void burn_cpu(long long ms) {
    const int64_t end = now_ns() + ms_to_ns(ms);
    while (now_ns() < end) {
    }
}

pid_t spawn_sleeper() {
    pid_t pid = fork();
    if (pid < 0) die_errno("fork");
    if (pid == 0) {
        close_range(3, ~0U, 0);
        for (;;) pause();
    }
    return pid;
}

// ---------------------------------------------------------------- sockets

std::string sock_name(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
    }
    if (ss.ss_family == AF_UNIX) {
        auto* un = reinterpret_cast<sockaddr_un*>(&ss);
        size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
        if (n == 0) return "unix:";
        if (un->sun_path[0] == '\0') return "unix:@" + std::string(un->sun_path + 1, n - 1);
        return "unix:" + std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    return "?";
}

// HOST:PORT, IPv4 ("*" or an empty host: any address).
bool parse_address(std::string_view s, sockaddr_in& in) {
    size_t colon = s.rfind(':');
    long long port = 0;
    if (colon == s.npos || !parse_ll(s.substr(colon + 1), 0, 65535, port)) return false;
    std::string host(s.substr(0, colon));
    if (host.empty() || host == "*") host = "0.0.0.0";
    if (host == "localhost") host = "127.0.0.1";
    in = {};
    in.sin_family = AF_INET;
    in.sin_port = htons(uint16_t(port));
    return inet_pton(AF_INET, host.c_str(), &in.sin_addr) == 1;
}

int bind_listener(const std::string& addr, bool reuseport) {
    sockaddr_in in{};
    if (!parse_address(addr, in)) usage_error("bad address " + addr + " (want HOST:PORT, e.g. 127.0.0.1:8080)");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die_errno("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die_errno("setsockopt SO_REUSEADDR");
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        die_errno("setsockopt SO_REUSEPORT");
    if (bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) die_errno("bind " + addr);
    if (listen(fd, 4096) != 0) die_errno("listen " + addr);
    return fd;
}

bool is_listening(int fd) {
    int v = 0;
    socklen_t l = sizeof v;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) == 0 && v != 0;
}

std::vector<int> listening_fds() {
    std::vector<int> fds;
    if (DIR* d = opendir("/proc/self/fd")) {
        while (dirent* e = readdir(d)) {
            int fd = std::atoi(e->d_name);
            if (fd >= 3 && fd != dirfd(d) && is_listening(fd)) fds.push_back(fd);
        }
        closedir(d);
    }
    std::sort(fds.begin(), fds.end());
    return fds;
}

// Sockets from socket activation (LISTEN_FDS), made non-blocking.
std::vector<int> inherited_listeners() {
    int n = sd_listen_fds(0);
    if (n < 0) { errno = -n; die_errno("sd_listen_fds"); }
    const char* env = getenv("LISTEN_FDS");
    if (n == 0 && env && std::string_view(env) != "0")
        die("LISTEN_FDS=" + std::string(env) + " but sd_listen_fds() found no sockets (is LISTEN_PID this process?)");
    std::vector<int> fds;
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
        int r = sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1);
        if (r < 0) { errno = -r; die_errno("fd " + std::to_string(fd)); }
        if (r == 0) die("fd " + std::to_string(fd) + " is not a listening stream socket");
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die_errno("fcntl O_NONBLOCK on fd " + std::to_string(fd));
        fds.push_back(fd);
    }
    return fds;
}

// ---------------------------------------------------------------- HTTP

enum class Method { Get, Head, Other };

struct Request {
    Method method = Method::Other;
    std::string_view path, query;
    bool http10 = false, keep_alive = true;
    uint64_t content_length = 0;
};

bool ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if ((a[i] | 0x20) != (b[i] | 0x20)) return false;  // ASCII letters and '-' only
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        size_t comma = list.find(',');
        if (ieq(trim(list.substr(0, comma)), token)) return true;
        list = comma == list.npos ? std::string_view{} : list.substr(comma + 1);
    }
    return false;
}

bool printable(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c != 0x7f; });
}

// Parses one request head. Returns its size, 0 when incomplete, -1 when malformed.
long parse_request(const char* buf, size_t n, Request& r) {
    const char *p = buf, *end = buf + n;
    while (p < end && (*p == '\r' || *p == '\n')) ++p;  // tolerated before a request line
    std::string_view line;
    auto next_line = [&]() {
        auto* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
        if (!nl) return false;
        const char* e = (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
        line = {p, size_t(e - p)};
        p = nl + 1;
        return true;
    };
    if (!next_line()) return 0;
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == line.npos || sp1 == sp2) return -1;
    std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                     version = line.substr(sp2 + 1);
    if (method.empty() || !printable(method) || target.empty() || target[0] != '/' || !printable(target)) return -1;
    if (version == "HTTP/1.1") r.http10 = false;
    else if (version == "HTTP/1.0") r.http10 = true;
    else return -1;
    r.method = method == "GET" ? Method::Get : method == "HEAD" ? Method::Head : Method::Other;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    r.query = q == target.npos ? std::string_view{} : target.substr(q + 1);
    bool conn_close = false, conn_keep = false, have_length = false;
    r.content_length = 0;
    for (;;) {
        if (!next_line()) return 0;
        if (line.empty()) break;
        size_t colon = line.find(':');
        if (colon == line.npos || colon == 0 || !printable(line.substr(0, colon))) return -1;
        std::string_view name = line.substr(0, colon), value = trim(line.substr(colon + 1));
        if (ieq(name, "connection")) {
            conn_close |= has_token(value, "close");
            conn_keep |= has_token(value, "keep-alive");
        } else if (ieq(name, "content-length")) {
            long long v = 0;
            if (!parse_ll(value, 0, 1LL << 50, v) || (have_length && uint64_t(v) != r.content_length)) return -1;
            have_length = true;
            r.content_length = uint64_t(v);
        } else if (ieq(name, "transfer-encoding")) {
            return -1;  // request bodies are not used here; chunked is not supported
        }
    }
    r.keep_alive = r.http10 ? (conn_keep && !conn_close) : !conn_close;
    return long(p - buf);
}

enum class Param { Missing, Bad, Ok };

Param query_int(std::string_view query, std::string_view key, long long max, long long& out) {
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view kv = query.substr(0, amp);
        if (kv.size() > key.size() && kv.starts_with(key) && kv[key.size()] == '=')
            return parse_ll(kv.substr(key.size() + 1), 0, max, out) ? Param::Ok : Param::Bad;
        query = amp == query.npos ? std::string_view{} : query.substr(amp + 1);
    }
    return Param::Missing;
}

void append_response(std::string& out, int status, std::string_view reason, std::string_view ctype,
                     std::string_view body, bool head, bool keep, bool http10) {
    char num[24];
    out += "HTTP/1.1 ";
    out.append(num, std::to_chars(num, num + sizeof num, status).ptr);
    out += ' ';
    out += reason;
    out += "\r\nContent-Type: ";
    out += ctype;
    out += "\r\nContent-Length: ";
    out.append(num, std::to_chars(num, num + sizeof num, body.size()).ptr);
    out += !keep ? "\r\nConnection: close\r\n\r\n" : http10 ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\n\r\n";
    if (!head) out += body;
}

void json_str(std::string& j, std::string_view s) {
    j += '"';
    for (char c : s) {
        if (c == '"' || c == '\\') { j += '\\'; j += c; }
        else if (static_cast<unsigned char>(c) < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(c));
            j += esc;
        } else j += c;
    }
    j += '"';
}

// ---------------------------------------------------------------- server

struct Conn {
    int fd = -1;
    uint32_t gen = 2;     // epoll tag; 0 and 1 are the listener and signal tags
    uint32_t events = 0;  // current epoll interest
    size_t in_len = 0;
    uint64_t body_left = 0;  // request body bytes still to discard
    std::string out;
    size_t out_off = 0;
    bool sleeping = false, close_after = false, peer_eof = false;
    bool served = false;  // has answered a request: idle from then on means between requests
    int exit_code = -1;
    struct { long long ms; bool head, keep, http10; } sleep{};
    char in[kInCap];

    size_t pending() const { return out.size() - out_off; }
};

struct Timer {
    int64_t at;
    int fd;
    uint32_t gen;
    bool operator>(const Timer& o) const { return at > o.at; }
};

constexpr uint32_t kTagListener = 0, kTagSignal = 1;
// A connection accepted just before a graceful stop may not have sent its request yet.
constexpr int64_t kFirstRequestGraceNs = 1'000'000'000;

class Server {
public:
    Server(Options opt, StartupSignals startup) : opt_(std::move(opt)), startup_(std::move(startup)) {
        const char* slot = getenv("PREFORK_WORKER_ID");
        slot_ = slot ? slot : "-";
        slot_match_ = !opt_.has_slot_only || (slot && opt_.slot_only == slot);
        hello_ = "hello from worker " + slot_ + " (pid " + std::to_string(pid_) + ")\n";
        listeners_ = inherited_listeners();  // before this process opens any fd of its own
        if (opt_.spawn_child) child_pid_ = spawn_sleeper();
        if (opt_.ignore_term) signal(SIGTERM, SIG_IGN);
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) die_errno("epoll_create1");
        setup_signals();
        setup_listeners();

        const int64_t start = now_ns();
        if (slot_match_ && opt_.exit_after_ms >= 0) exit_at_ = start + ms_to_ns(opt_.exit_after_ms);
        if (slot_match_ && opt_.crash_after_ms >= 0) crash_at_ = start + ms_to_ns(opt_.crash_after_ms);
        uint64_t usec = 0;
        if (!opt_.no_watchdog && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
            watchdog_every_ = int64_t(usec) * 1000 / 2;
            watchdog_at_ = start;
        }
        if (opt_.print_stdout) {
            std::printf("demo worker %s started (pid %d)\n", slot_.c_str(), int(pid_));
            std::fflush(stdout);
        }
        if (!(opt_.no_ready && slot_match_)) {
            if (opt_.ready_delay_ms > 0) ready_at_ = start + ms_to_ns(opt_.ready_delay_ms);
            else notify("READY=1");
        }
    }

    int run() {
        epoll_event events[256];
        while (!(stopping_ && live_ == 0)) {
            int n = epoll_wait(ep_, events, 256, timeout_ms(now_ns()));
            if (n < 0 && errno != EINTR) die_errno("epoll_wait");
            for (int i = 0; i < n; ++i) {
                const uint32_t tag = uint32_t(events[i].data.u64 >> 32), ev = events[i].events;
                const int fd = int(events[i].data.u64 & 0xffffffffu);
                if (tag == kTagListener) {
                    if (!stopping_) accept_all(fd);
                } else if (tag == kTagSignal) {
                    read_signals();
                } else if (size_t(fd) < conns_.size() && conns_[fd] && conns_[fd]->gen == tag && conns_[fd]->fd >= 0) {
                    Conn& c = *conns_[fd];
                    if (ev & EPOLLIN) on_readable(c);
                    else if (ev & EPOLLOUT) process(c);
                    else if (ev & (EPOLLERR | EPOLLHUP)) close_conn(c);
                }
            }
            run_timers();
        }
        return 0;
    }

private:
    void notify(const char* state) const {
        int r = sd_notify(0, state);
        if (r < 0) { errno = -r; warn_errno(std::string("sd_notify ") + state); }
    }

    void watch(int fd, uint32_t tag, uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = (uint64_t(tag) << 32) | uint32_t(fd);
        if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) die_errno("epoll_ctl ADD");
    }

    void setup_signals() {
        sigset_t set;
        sigemptyset(&set);
        if (!opt_.ignore_term) sigaddset(&set, SIGTERM);  // a blocked signal is queued even when ignored
        sigaddset(&set, SIGINT);
        if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) die_errno("sigprocmask");
        sigfd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (sigfd_ < 0) die_errno("signalfd");
        watch(sigfd_, kTagSignal, EPOLLIN);
    }

    void setup_listeners() {
        if (!opt_.listen.empty() || listeners_.empty())
            listeners_.push_back(bind_listener(opt_.listen.empty() ? "127.0.0.1:8080" : opt_.listen, opt_.reuseport));
        for (int fd : listeners_) watch(fd, kTagListener, EPOLLIN);
    }

    int timeout_ms(int64_t now) const {
        int64_t next = -1;
        const int64_t grace = stopping_ && now < first_request_grace_ ? first_request_grace_ : -1;
        for (int64_t t : {ready_at_, watchdog_at_, exit_at_, crash_at_, grace, sleeps_.empty() ? -1 : sleeps_.top().at})
            if (t >= 0 && (next < 0 || t < next)) next = t;
        if (next < 0) return -1;
        return next <= now ? 0 : int(std::min<int64_t>((next - now + 999'999) / 1'000'000, 60'000));
    }

    void run_timers() {
        const int64_t now = now_ns();
        if (stopping_ && first_request_grace_ >= 0 && now >= first_request_grace_) {
            first_request_grace_ = -1;  // once: connections still silent now are closed
            for (auto& c : conns_)
                if (c && c->fd >= 0) process(*c);
        }
        if (crash_at_ >= 0 && now >= crash_at_) crash();
        if (exit_at_ >= 0 && now >= exit_at_) std::exit(int(opt_.exit_code));
        if (ready_at_ >= 0 && now >= ready_at_) {
            ready_at_ = -1;
            if (!stopping_) notify("READY=1");
        }
        if (watchdog_at_ >= 0 && now >= watchdog_at_) {
            notify("WATCHDOG=1");
            watchdog_at_ = now + watchdog_every_;
        }
        while (!sleeps_.empty() && sleeps_.top().at <= now) {
            Timer t = sleeps_.top();
            sleeps_.pop();
            Conn* c = size_t(t.fd) < conns_.size() ? conns_[t.fd].get() : nullptr;
            if (c && c->fd >= 0 && c->gen == t.gen && c->sleeping) finish_sleep(*c);
        }
    }

    void read_signals() {
        signalfd_siginfo si;
        while (read(sigfd_, &si, sizeof si) == ssize_t(sizeof si)) begin_stop();
    }

    void begin_stop() {
        if (stopping_) return;
        stopping_ = true;
        first_request_grace_ = now_ns() + kFirstRequestGraceNs;
        notify("STOPPING=1");
        if (opt_.print_stdout) {
            std::fprintf(stderr, "demo worker %s stopping\n", slot_.c_str());
            std::fflush(stderr);
        }
        for (int fd : listeners_) close(fd);  // the master keeps its copies
        listeners_.clear();
        for (auto& c : conns_) {
            if (!c || c->fd < 0) continue;
            if (c->events & EPOLLIN) on_readable(*c);  // pick up a request already on the wire
            else process(*c);                        // closes the connection if idle
        }
    }

    void accept_all(int lfd) {
        for (;;) {
            int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) warn_errno("accept4");
                return;
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on unix sockets
            if (size_t(fd) >= conns_.size()) conns_.resize(size_t(fd) + 1);
            if (!conns_[fd]) {
                conns_[fd].reset(new Conn);  // default-init: the input buffer is not zeroed
                conns_[fd]->out.reserve(4096);
            }
            Conn& c = *conns_[fd];
            c.fd = fd;
            c.events = EPOLLIN;
            ++live_;
            watch(fd, c.gen, EPOLLIN);
        }
    }

    void close_conn(Conn& c) {
        close(c.fd);
        c.fd = -1;
        if (++c.gen < 2) c.gen = 2;
        c.in_len = c.out_off = 0;
        c.body_left = 0;
        c.out.clear();
        c.sleeping = c.close_after = c.peer_eof = c.served = false;
        c.exit_code = -1;
        --live_;
    }

    void on_readable(Conn& c) {
        if (c.in_len < kInCap && !c.peer_eof) {
            ssize_t n = recv(c.fd, c.in + c.in_len, kInCap - c.in_len, 0);
            if (n > 0) c.in_len += size_t(n);
            else if (n == 0) c.peer_eof = true;
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return close_conn(c);
        }
        process(c);
    }

    // Answers what can be answered, writes, and decides whether the connection lives on.
    void process(Conn& c) {
        for (;;) {
            bool blocked = parse_and_handle(c);
            if (!flush(c)) return;
            if (!blocked || c.pending() > 0) break;
        }
        const bool idle = !c.sleeping && c.in_len == 0 && c.body_left == 0;
        // At a stop, a connection between requests closes at once; one accepted just before
        // the stop whose first request is still on its way gets until first_request_grace_.
        const bool stop_now = stopping_ && idle && (c.served || now_ns() >= first_request_grace_);
        if (c.pending() == 0 && (c.close_after || (c.peer_eof && !c.sleeping) || stop_now))
            return close_conn(c);
        update_interest(c);
    }

    // Handles the complete requests in the input buffer. Returns true when it stopped
    // because too much output is pending.
    bool parse_and_handle(Conn& c) {
        size_t off = 0;
        bool blocked = false;
        while (!c.sleeping && !c.close_after) {
            if (c.pending() >= kOutHigh) { blocked = true; break; }
            if (c.body_left > 0) {
                size_t k = size_t(std::min<uint64_t>(c.body_left, c.in_len - off));
                off += k;
                c.body_left -= k;
                if (c.body_left > 0) break;
            }
            if (off == c.in_len) break;
            Request r;
            long n = parse_request(c.in + off, c.in_len - off, r);
            if (n == 0) {
                if (off == 0 && c.in_len == kInCap)
                    reply_error(c, 431, "Request Header Fields Too Large", "request head too large\n");
                break;
            }
            if (n < 0) { reply_error(c, 400, "Bad Request", "bad request\n"); break; }
            off += size_t(n);
            c.body_left = r.content_length;
            c.served = true;
            handle(c, r);
        }
        if (c.close_after) c.in_len = 0;  // nothing after this response will be answered
        else if (off > 0) {
            std::memmove(c.in, c.in + off, c.in_len - off);
            c.in_len -= off;
        }
        return blocked;
    }

    void reply_error(Conn& c, int status, std::string_view reason, std::string_view body) {
        append_response(c.out, status, reason, kText, body, false, false, false);
        c.close_after = true;
    }

    void handle(Conn& c, const Request& r) {
        const bool keep = r.keep_alive && !stopping_, head = r.method == Method::Head;
        auto reply = [&](int status, std::string_view reason, std::string_view body, std::string_view ctype = kText) {
            append_response(c.out, status, reason, ctype, body, head, keep, r.http10);
            if (!keep) c.close_after = true;
        };
        char buf[256];
        if (r.method == Method::Other) return reply(405, "Method Not Allowed", "method not allowed\n");
        if (r.path == "/") return reply(200, "OK", hello_);
        if (r.path == "/work" || r.path == "/sleep") {
            long long ms = 0;
            if (query_int(r.query, "ms", kMaxMs, ms) != Param::Ok)
                return reply_error(c, 400, "Bad Request", "want ms=N, N from 0 to 3600000\n");
            if (r.path == "/work") {
                burn_cpu(ms);
                return reply(200, "OK", timed_body(buf, "worked", ms));
            }
            c.sleeping = true;
            c.sleep = {ms, head, r.keep_alive, r.http10};
            sleeps_.push({now_ns() + ms_to_ns(ms), c.fd, c.gen});
            return;
        }
        if (r.path == "/env") return reply(200, "OK", env_json(), "application/json");
        if (r.path == "/exit") {
            long long code = 0;
            if (query_int(r.query, "code", 255, code) == Param::Bad)
                return reply_error(c, 400, "Bad Request", "want code=N, N from 0 to 255\n");
            append_response(c.out, 200, "OK", kText, "exiting with code " + std::to_string(code) + "\n", head, false, r.http10);
            c.close_after = true;
            c.exit_code = int(code);
            return;
        }
        if (r.path == "/crash") crash();
        if (r.path == "/alloc") {
            long long mb = 0;
            if (query_int(r.query, "mb", kMaxAllocMib, mb) != Param::Ok)
                return reply_error(c, 400, "Bad Request", "want mb=N, N from 0 to 4096\n");
            const long long total = hold_memory(mb);
            if (total < 0) return reply_error(c, 507, "Insufficient Storage", "cannot hold that much memory\n");
            return reply(200, "OK", "holding " + std::to_string(total) + " MiB in " + hello_.substr(11));
        }
        reply(404, "Not Found", "not found\n");
    }

    // "<verb> N ms in worker <slot> (pid <pid>)\n", formatted into buf (256 bytes).
    std::string_view timed_body(char* buf, const char* verb, long long ms) const {
        int len = std::snprintf(buf, 256, "%s %lld ms in worker %s (pid %d)\n", verb, ms, slot_.c_str(), int(pid_));
        return {buf, size_t(std::clamp(len, 0, 255))};
    }

    void finish_sleep(Conn& c) {
        c.sleeping = false;
        const bool keep = c.sleep.keep && !stopping_;
        char buf[256];
        append_response(c.out, 200, "OK", kText, timed_body(buf, "slept", c.sleep.ms), c.sleep.head, keep, c.sleep.http10);
        if (!keep) c.close_after = true;
        process(c);
    }

    // Writes pending output. Returns false when the connection was closed.
    bool flush(Conn& c) {
        while (c.pending() > 0) {
            ssize_t n = send(c.fd, c.out.data() + c.out_off, c.pending(), MSG_NOSIGNAL);
            if (n > 0) { c.out_off += size_t(n); continue; }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
            close_conn(c);
            return false;
        }
        c.out.clear();
        c.out_off = 0;
        if (c.exit_code >= 0) std::exit(c.exit_code);  // /exit: the answer is out
        return true;
    }

    void update_interest(Conn& c) {
        uint32_t want = 0;
        if (!c.peer_eof && !c.close_after && !c.sleeping && c.in_len < kInCap && c.pending() < kOutHigh) want |= EPOLLIN;
        if (c.pending() > 0) want |= EPOLLOUT;
        if (want == c.events) return;
        epoll_event ev{};
        ev.events = want;
        ev.data.u64 = (uint64_t(c.gen) << 32) | uint32_t(c.fd);
        if (epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev) != 0) die_errno("epoll_ctl MOD");
        c.events = want;
    }

    std::string env_json() const {
        static const char* const kNames[] = {
            "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "PREFORK_CHILD", "PREFORK_WORKER_ID", "PREFORK_WORKERS",
            "PREFORK_MASTER_PID", "PREFORK_GENERATION", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"};
        std::string j = "{\"pid\":" + std::to_string(pid_) + ",\"ppid\":" + std::to_string(getppid()) + ",\"slot\":";
        json_str(j, slot_);
        char cwd[4096];
        int pdeathsig = 0;
        prctl(PR_GET_PDEATHSIG, &pdeathsig);
        j += ",\"child_pid\":" + std::to_string(child_pid_) + ",\"uid\":" + std::to_string(getuid()) +
             ",\"gid\":" + std::to_string(getgid()) + ",\"pdeathsig\":" + std::to_string(pdeathsig) + ",\"cwd\":";
        json_str(j, getcwd(cwd, sizeof cwd) ? cwd : "");
        j += ",\"env\":{";
        bool first = true;
        auto add = [&](std::string_view name, std::string_view value) {
            if (!first) j += ',';
            first = false;
            json_str(j, name);
            j += ':';
            json_str(j, value);
        };
        for (const char* name : kNames)
            if (const char* v = getenv(name)) add(name, v);
        for (char** e = environ; *e; ++e) {
            std::string_view kv = *e;
            size_t eq = kv.find('=');
            if (eq != kv.npos && (kv.starts_with("APP_") || kv.starts_with("DEMO_"))) add(kv.substr(0, eq), kv.substr(eq + 1));
        }
        j += "},\"fds\":[";
        first = true;
        for (int fd : listening_fds()) {
            struct stat st{};
            fstat(fd, &st);
            j += first ? "" : ",";
            first = false;
            j += "{\"fd\":" + std::to_string(fd) + ",\"inode\":" + std::to_string(st.st_ino) + ",\"local\":";
            json_str(j, sock_name(fd));
            j += '}';
        }
        struct stat in{}, null{};
        const bool devnull = fstat(0, &in) == 0 && stat("/dev/null", &null) == 0 && S_ISCHR(in.st_mode) &&
                             in.st_rdev == null.st_rdev;
        j += std::string("],\"stdin_is_devnull\":") + (devnull ? "true" : "false") +
             ",\"sigmask_empty\":" + (startup_.mask_empty ? "true" : "false") + ",\"ignored_signals\":[";
        for (size_t i = 0; i < startup_.ignored.size(); ++i) j += (i ? "," : "") + std::to_string(startup_.ignored[i]);
        j += "]}\n";
        return j;
    }

    Options opt_;
    StartupSignals startup_;
    std::string slot_, hello_;
    bool slot_match_ = true;
    pid_t pid_ = getpid(), child_pid_ = 0;
    int ep_ = -1, sigfd_ = -1;
    std::vector<int> listeners_;
    std::vector<std::unique_ptr<Conn>> conns_;  // indexed by fd, reused
    size_t live_ = 0;
    bool stopping_ = false;
    int64_t first_request_grace_ = -1;  // at a stop: until when a silent new connection may wait
    std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> sleeps_;
    int64_t ready_at_ = -1, watchdog_at_ = -1, watchdog_every_ = 0, exit_at_ = -1, crash_at_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
    StartupSignals startup = capture_signals();  // first: before anything changes them
    Options opt = parse_args(argc, argv);
    Server server(std::move(opt), std::move(startup));
    return server.run();
}
