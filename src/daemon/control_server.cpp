#include <preforkd/daemon/control_server.hpp>

#include <preforkd/daemon/timer.hpp>
#include <preforkd/os/fd.hpp>
#include <preforkd/os/unix_socket.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace preforkd::daemon {
namespace {

using nlohmann::json;

std::string errno_text(int err) { return std::strerror(err); }

// Makes the missing directories above the socket, so /run/preforkd need not exist.
Status make_parent_dirs(const std::string& path, mode_t mode, std::optional<gid_t> group) {
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), mode) == 0) {
      // mkdir's mode went through the umask; the group needs its x bit to reach the socket.
      if (::chmod(dir.c_str(), mode) != 0 || (group && ::chown(dir.c_str(), static_cast<uid_t>(-1), *group) != 0)) {
        return Error{"cannot set up control socket directory '" + dir + "': " + errno_text(errno)};
      }
    } else if (errno != EEXIST) {
      return Error{"cannot create control socket directory '" + dir + "': " + errno_text(errno)};
    }
  }
  return Ok{};
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// An existing socket file is stale when connecting to it is refused: its master is gone.
Status clear_stale_socket(const std::string& path) {
  const auto existing = os::clear_stale_unix_socket(path);
  if (!existing) return Error{"control socket: " + existing.error()};
  switch (*existing) {
    case os::SocketFile::absent: return Ok{};
    case os::SocketFile::live: return Error{"control socket '" + path + "' is in use by a running preforkd"};
    case os::SocketFile::not_a_socket:
      return Error{"control socket '" + path + "' exists and is not a socket; remove it or set control_socket"};
  }
  return Ok{};
}

struct BoundSocket {
  os::Fd fd;
  struct stat st {};
};

Result<BoundSocket> bind_socket(const ControlServerOptions& options) {
  const std::string& path = options.path;
  if (path.empty() || path.front() != '/') return Error{"control socket '" + path + "': must be an absolute path"};
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error{"control socket '" + path + "': the path is longer than " +
                 std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes"};
  }
  if (auto ok = make_parent_dirs(path, options.group ? 0750 : 0755, options.group); !ok) return Error{ok.error()};
  if (auto ok = clear_stale_socket(path); !ok) return Error{ok.error()};

  BoundSocket bound;
  bound.fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!bound.fd.valid()) return Error{"socket: " + errno_text(errno)};
  const sockaddr_un addr = unix_address(path);
  // The file is born 0600 so that nobody else can connect before chmod and chown below.
  // The master has one thread, so the process-wide umask is ours for these two calls.
  const mode_t old_umask = ::umask(0177);
  const int rc = ::bind(bound.fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::umask(old_umask);
  if (rc != 0) {
    if (err == EADDRINUSE) return Error{"control socket '" + path + "' is in use by a running preforkd"};
    return Error{"cannot bind control socket '" + path + "': " + errno_text(err)};
  }
  if (::chmod(path.c_str(), options.mode) != 0 ||
      (options.group && ::chown(path.c_str(), static_cast<uid_t>(-1), *options.group) != 0) ||
      ::lstat(path.c_str(), &bound.st) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return Error{"cannot set the mode or group of control socket '" + path + "': " + errno_text(e)};
  }
  return bound;
}

// A reply being written; freed by the write callback, which libuv always calls, with
// UV_ECANCELED if the connection is closed first.
struct WriteRequest {
  uv_write_t req{};
  std::string data;
};

}  // namespace

// --- one client -------------------------------------------------------------------------

class ControlServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ControlServer& server, uv_loop_t* loop)
      : server_(&server), idle_(loop, [this] { on_idle(); }) {
    uv_pipe_init(loop, pipe_.get(), 0);
    pipe_.get()->data = this;
  }

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(pipe_.get()); }

  void start() {
    counted_ = true;
    ++server_->active_;
    resume_reading();
    arm_idle_timer();
  }

  // Tells the client why, then hangs up.
  void refuse(std::string_view why) {
    send(control::make_error(why));
    close_when_flushed();
  }

  void finish_request(json reply) {
    if (closing_) return;
    busy_ = false;
    send(reply);
    pump();
    if (!busy_ && !closing_ && !close_after_flush_) {
      resume_reading();
      arm_idle_timer();
    }
  }

  // Closes the handles; the server drops its reference (the caller holds its own).
  void close() {
    if (closing_) return;
    closing_ = true;
    idle_.stop();
    pipe_.close();
    if (server_ != nullptr) {
      if (counted_) --server_->active_;
      server_->forget(this);
    }
  }

  // The server is going away: close without telling it.
  void detach() {
    server_ = nullptr;
    close();
  }

 private:
  static void alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Connection*>(h->data);
    *buf = self == nullptr ? uv_buf_init(nullptr, 0) : uv_buf_init(self->chunk_, sizeof self->chunk_);
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* raw = static_cast<Connection*>(s->data);
    if (raw == nullptr) return;
    const auto keep = raw->shared_from_this();
    if (n > 0) {
      raw->consume(std::string_view(buf->base, static_cast<std::size_t>(n)));
    } else if (n == UV_EOF) {
      // Maybe only a half-close (`printf ... | nc -U`): requests read so far are still answered.
      raw->eof_ = true;
      raw->reading_ = false;
      raw->pump();
    } else if (n < 0) {
      raw->close();
    }
  }

  static void on_write(uv_write_t* req, int status) {
    const std::unique_ptr<WriteRequest> done(static_cast<WriteRequest*>(req->data));
    auto* raw = static_cast<Connection*>(req->handle->data);
    if (raw == nullptr) return;
    const auto keep = raw->shared_from_this();
    --raw->pending_writes_;
    if (status < 0 || (raw->close_after_flush_ && raw->pending_writes_ == 0)) {
      raw->close();  // a client that hung up mid-reply is simply gone
    } else if (!raw->busy_) {
      raw->arm_idle_timer();
    }
  }

  void on_idle() {
    const auto keep = shared_from_this();
    if (close_after_flush_ || busy_) {
      close();  // it does not read its reply
      return;
    }
    spdlog::debug("control socket: closing a connection idle for {}", format_duration(server_->options_.idle_timeout));
    if (buffer_.empty()) {
      close();
    } else {
      refuse("request timed out: no end of line after " + format_duration(server_->options_.idle_timeout));
    }
  }

  void consume(std::string_view data) {
    buffer_.append(data);
    if (busy_) {
      // One request at a time: hold the rest, but do not buffer without bound meanwhile.
      if (buffer_.size() > control::max_request_bytes) stop_reading();
      return;
    }
    arm_idle_timer();
    pump();
  }

  // Answers the complete lines in the buffer, in order, while no request is in flight.
  void pump() {
    if (in_pump_) return;  // a responder called from inside the handler
    in_pump_ = true;
    while (!busy_ && !closing_ && !close_after_flush_) {
      const auto nl = buffer_.find('\n');
      std::string line;
      if (nl != std::string::npos) {
        line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
      } else if (buffer_.size() > control::max_request_bytes) {
        line = std::move(buffer_);  // refused below without waiting for the rest
        buffer_.clear();
      } else if (eof_ && !buffer_.empty()) {
        line = std::move(buffer_);  // a last request without its newline
        buffer_.clear();
      } else {
        if (eof_) close_when_flushed();
        break;
      }
      if (line.size() > control::max_request_bytes) {
        refuse("request too long: more than " + std::to_string(control::max_request_bytes) + " bytes");
        break;
      }
      if (line.ends_with('\r')) line.pop_back();
      if (line.empty()) continue;
      dispatch(line);
    }
    in_pump_ = false;
  }

  void dispatch(std::string_view line) {
    auto request = control::parse_request(line);
    if (!request) {
      send(control::make_error(request.error()));  // the connection stays open for the next line
      return;
    }
    busy_ = true;
    idle_.stop();
    spdlog::debug("control socket: {} request", control::to_string(request->command));
    // The responder may outlive this connection (and the server): it holds a weak reference.
    auto answered = std::make_shared<bool>(false);
    std::weak_ptr<Connection> weak = weak_from_this();
    server_->handler_(*request, [weak, answered](json reply) {
      if (std::exchange(*answered, true)) return;
      if (const auto self = weak.lock()) self->finish_request(std::move(reply));
    });
  }

  void send(const json& reply) {
    if (closing_) return;
    auto w = std::make_unique<WriteRequest>();
    w->data = reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    w->req.data = w.get();
    const uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, stream(), &buf, 1, &Connection::on_write) != 0) {
      close();
      return;
    }
    (void)w.release();  // on_write frees it
    ++pending_writes_;
  }

  void close_when_flushed() {
    close_after_flush_ = true;
    stop_reading();
    if (pending_writes_ == 0) {
      close();
    } else {
      arm_idle_timer();  // bounded wait for a client that does not read
    }
  }

  void resume_reading() {
    if (reading_ || eof_ || closing_) return;
    reading_ = uv_read_start(stream(), &Connection::alloc, &Connection::on_read) == 0;
  }

  void stop_reading() {
    if (!reading_) return;
    uv_read_stop(stream());
    reading_ = false;
  }

  void arm_idle_timer() {
    if (!closing_) idle_.start(server_->options_.idle_timeout);
  }

  ControlServer* server_;
  UvHandle<uv_pipe_t> pipe_;
  Timer idle_;
  std::string buffer_;
  char chunk_[16 * 1024];
  int pending_writes_ = 0;
  bool counted_ = false;
  bool busy_ = false;  // a request is with the handler
  bool reading_ = false;
  bool eof_ = false;
  bool in_pump_ = false;
  bool close_after_flush_ = false;
  bool closing_ = false;
};

// --- the listening socket -----------------------------------------------------------------

Result<std::unique_ptr<ControlServer>> ControlServer::open(uv_loop_t* loop, ControlServerOptions options,
                                                           Handler handler) {
  auto bound = bind_socket(options);
  if (!bound) return Error{bound.error()};
  std::unique_ptr<ControlServer> server(new ControlServer(loop, std::move(options), std::move(handler)));
  const std::string& path = server->options_.path;
  server->socket_dev_ = bound->st.st_dev;
  server->socket_ino_ = bound->st.st_ino;  // from here on the destructor unlinks the file
  auto* pipe = server->listener_.get();
  uv_pipe_init(loop, pipe, 0);
  pipe->data = server.get();
  if (const int rc = uv_pipe_open(pipe, bound->fd.get()); rc != 0) {
    return Error{"control socket '" + path + "': " + uv_strerror(rc)};
  }
  (void)bound->fd.release();  // the pipe handle owns it now
  if (const int rc = uv_listen(reinterpret_cast<uv_stream_t*>(pipe), SOMAXCONN, &ControlServer::on_connection);
      rc != 0) {
    return Error{"cannot listen on control socket '" + path + "': " + uv_strerror(rc)};
  }
  return server;
}

ControlServer::ControlServer(uv_loop_t* loop, ControlServerOptions options, Handler handler)
    : loop_(loop), options_(std::move(options)), handler_(std::move(handler)), owner_uid_(::geteuid()) {}

ControlServer::~ControlServer() {
  listener_.close();
  auto connections = std::move(connections_);
  connections_.clear();
  for (auto& [raw, connection] : connections) connection->detach();
  // Only our own file: if someone replaced it meanwhile, it is theirs.
  struct stat st {};
  if (socket_ino_ != 0 && ::lstat(options_.path.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
      st.st_ino == socket_ino_) {
    ::unlink(options_.path.c_str());
  }
}

void ControlServer::on_connection(uv_stream_t* listener, int status) {
  auto* self = static_cast<ControlServer*>(listener->data);
  if (self == nullptr) return;
  if (status < 0) {
    spdlog::warn("control socket '{}': accept: {}, ignoring", self->options_.path, uv_strerror(status));
    return;
  }
  self->accept_one();
}

void ControlServer::accept_one() {
  auto connection = std::make_shared<Connection>(*this, loop_);
  connections_.emplace(connection.get(), connection);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_.get()), connection->stream()) != 0) {
    connection->close();
    return;
  }
  uv_os_fd_t fd = -1;
  uv_fileno(reinterpret_cast<uv_handle_t*>(connection->stream()), &fd);
  auto peer = os::read_peer_credentials(fd);
  if (!peer) {
    spdlog::warn("control socket '{}': {}, closing the connection", options_.path, peer.error());
    connection->close();
    return;
  }
  if (!allowed(*peer)) {
    spdlog::warn("control socket '{}': refused uid {} (pid {}): not root, uid {} or in the control group",
                 options_.path, peer->uid, peer->pid, owner_uid_);
    connection->refuse("permission denied: uid " + std::to_string(peer->uid) + " is not allowed to use this socket");
    return;
  }
  if (active_ >= options_.max_clients) {
    spdlog::warn("control socket '{}': {} clients already connected, refusing pid {}", options_.path, active_,
                 peer->pid);
    connection->refuse("too many clients: at most " + std::to_string(options_.max_clients) +
                       " connections at once; try again");
    return;
  }
  connection->start();
}

bool ControlServer::allowed(const os::PeerCredentials& peer) const {
  if (peer.uid == 0 || peer.uid == owner_uid_) return true;
  if (!options_.group) return false;
  if (peer.gid == *options_.group) return true;
  // SO_PEERCRED has no supplementary groups; /proc has them while the peer lives.
  auto groups = os::read_supplementary_groups(peer.pid);
  return groups && std::find(groups->begin(), groups->end(), *options_.group) != groups->end();
}

void ControlServer::forget(Connection* connection) { connections_.erase(connection); }

}  // namespace preforkd::daemon
