#include <preforkd/daemon/endpoints/control_server.hpp>

#include <preforkd/os/control_socket_file.hpp>
#include <preforkd/os/fd.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <malloc.h>
#include <string_view>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace preforkd::daemon {

using nlohmann::json;

// --- one client -------------------------------------------------------------------------
//
// Bounds, so that no client can hold the master's memory or a slot for long:
// - the request deadline: a connection has options.idle_timeout from its connection, or
//   from its last answered request, to complete the next one; bytes that trickle in do not
//   extend it. The same deadline bounds how long a reply may wait for the client to read it.
// - unsent reply bytes: above options.max_unsent_bytes the connection's requests are not
//   read until the client has read its replies (stop_reading, then start_reading).

class ControlServer::Connection final : public StreamConnection {
 public:
  explicit Connection(ControlServer& server) : server_(&server) {}

  void finish_request(json reply) {
    if (closed()) return;
    if (following_) {
      // Stays busy: no more requests; reading goes on only to see the client hang up.
      send(reply);
      disarm();
      buffer_.clear();
      resume_reading();
      return;
    }
    busy_ = false;
    send(reply);
    request_done();
    pump();
    if (!busy_ && !closed() && !close_after_flush_ && !blocked()) resume_reading();
  }

  // Becomes a follower: see ControlServer::Push.
  void follow() { following_ = true; }

  ControlServer::Pushed push(const json& message) {
    if (closed() || close_after_flush_) return ControlServer::Pushed::gone;
    if (message.is_null()) return ControlServer::Pushed::sent;  // only asks whether it is still there
    if (blocked()) return ControlServer::Pushed::dropped;
    send(message);
    return closed() ? ControlServer::Pushed::gone : ControlServer::Pushed::sent;
  }

 private:
  // Peers are checked when they connect; then the connection takes a place among
  // max_clients, or is told why not.
  void accepted() override {
    ControlServer& server = *server_;
    const std::string& path = server.options_.path;
    auto peer = os::read_peer_credentials(fd());
    if (!peer) {
      spdlog::warn("control socket '{}': {}, closing the connection", path, peer.error());
      return close();
    }
    if (!server.allowed(*peer)) {
      spdlog::warn("control socket '{}': refused uid {} (pid {}): not root, uid {} or in the control group", path,
                   peer->uid, peer->pid, server.owner_uid_);
      return refuse("permission denied: uid " + std::to_string(peer->uid) + " is not allowed to use this socket");
    }
    switch (admit()) {
      case Admission::admitted:
        break;
      case Admission::evicted:
        spdlog::warn(
            "control socket '{}': {} clients connected; closed the one waiting longest for a complete request",
            path, server.options_.max_clients);
        break;
      case Admission::full:
        spdlog::warn("control socket '{}': {} clients already connected, refusing pid {}", path, server.clients(),
                     peer->pid);
        return refuse("too many clients: at most " + std::to_string(server.options_.max_clients) +
                      " connections at once; try again");
    }
    waiting_since_ = Clock::now();
    resume_reading();
    arm_deadline();
  }

  void bytes_arrived(std::string_view data) override {
    if (following_) return;  // a follower's words are not requests
    consume(data);
  }

  void peer_closed() override {
    if (following_) return close();  // hung up: stop sending to it
    // Maybe only a half-close (`printf ... | nc -U`): requests read so far are still answered.
    eof_ = true;
    pump();
  }

  void written(std::size_t bytes, bool ok) override {
    if (attached()) server_->written_since_trim_ += bytes;
    if (!ok || (close_after_flush_ && pending_writes() == 0)) {
      close();  // a client that hung up mid-reply is simply gone
    } else if (!busy_ && !closed() && !close_after_flush_ && !blocked()) {
      // The client reads again: answer what it sent meanwhile, then read more.
      pump();
      if (!busy_ && !closed() && !close_after_flush_ && !blocked()) resume_reading();
    }
  }

  void timed_out() override {
    if (busy_ || !attached()) return;  // the handler answers (a reload waits for its workers)
    if (close_after_flush_ || unsent_bytes() > 0) {
      close();  // it does not read its reply
      return;
    }
    const Duration deadline = server_->options_.idle_timeout;
    if (buffer_.empty()) {
      spdlog::debug("control socket: closing a connection idle for {}", format_duration(deadline));
      close();
    } else {
      spdlog::debug("control socket: closing a connection whose request took more than {}", format_duration(deadline));
      refuse("request timed out: no end of line after " + format_duration(deadline));
    }
  }

  void on_close() override { server_->closed(); }

  // Waiting for a request to be complete (silent since connecting, or part of a line read)
  // since when; nullopt while idle between requests, busy, or closing. The server, when
  // full, closes the one that has waited longest.
  [[nodiscard]] std::optional<Clock::time_point> waiting_since() const override {
    if (busy_ || closed() || close_after_flush_) return std::nullopt;
    return waiting_since_;
  }

  // Tells the client why, then hangs up.
  void refuse(std::string_view why) {
    send(control::make_error(why));
    close_when_flushed();
  }

  // Too many reply bytes wait for this client to read them.
  [[nodiscard]] bool blocked() const {
    return attached() && unsent_bytes() >= server_->options_.max_unsent_bytes;
  }

  void consume(std::string_view data) {
    if (buffer_.empty() && !waiting_since_) waiting_since_ = Clock::now();
    buffer_.append(data);
    if (busy_ || blocked()) {
      // One request at a time, and replies read before more requests: hold the rest, but do
      // not buffer without bound meanwhile.
      if (buffer_.size() > control::max_request_bytes || blocked()) stop_reading();
      return;
    }
    pump();
  }

  // A request was answered: the next one gets a fresh deadline, starting now.
  void request_done() {
    waiting_since_.reset();
    if (!buffer_.empty()) waiting_since_ = Clock::now();
    arm_deadline();
  }

  // Answers the complete lines in the buffer, in order, while no request is in flight and
  // the client reads its replies.
  void pump() {
    if (in_pump_) return;  // a responder called from inside the handler
    in_pump_ = true;
    while (!busy_ && !closed() && !close_after_flush_) {
      if (blocked()) {
        stop_reading();
        break;
      }
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
      request_done();
      return;
    }
    busy_ = true;
    disarm();
    spdlog::debug("control socket: {} request", control::to_string(request->command));
    // The responder may outlive this connection (and the server): it holds a weak reference.
    auto answered = std::make_shared<bool>(false);
    auto self = std::static_pointer_cast<Connection>(shared_from_this());
    std::weak_ptr<Connection> weak = self;
    // While the handler runs, the server can name this connection's fd (upgrade hands it on).
    ControlServer* server = server_;
    server->handling_fd_ = fd();
    server->handling_ = self;
    server->handler_(*request, [weak, answered](json reply) {
      if (std::exchange(*answered, true)) return;
      if (const auto connection = weak.lock()) connection->finish_request(std::move(reply));
    });
    server->handling_fd_ = -1;
    server->handling_.reset();
  }

  void send(const json& reply) {
    if (closed()) return;
    std::string line = reply.dump(-1, ' ', false, json::error_handler_t::replace);
    line.push_back('\n');
    if (Status st = write(std::move(line)); !st) close();
  }

  void close_when_flushed() {
    close_after_flush_ = true;
    stop_reading();
    if (pending_writes() == 0) {
      close();
    } else {
      arm_deadline();  // bounded wait for a client that does not read
    }
  }

  void resume_reading() {
    if (reading() || eof_ || closed()) return;
    if (Status st = start_reading(); !st) fail(st.error());
  }

  void arm_deadline() {
    if (closed() || !attached()) return;
    if (Status st = arm(server_->options_.idle_timeout); !st) fail(st.error());
  }

  // A libuv call that should not fail did: the connection cannot go on.
  void fail(const std::string& why) {
    spdlog::warn("control socket '{}': {}, closing a connection", server_->options_.path, why);
    close();
  }

  ControlServer* server_;
  std::string buffer_;
  std::optional<Clock::time_point> waiting_since_;  // when the pending request began
  bool busy_ = false;  // a request is with the handler
  bool eof_ = false;
  bool in_pump_ = false;
  bool close_after_flush_ = false;
  bool following_ = false;  // a streaming reply: see ControlServer::Push
};

// --- the listening socket -----------------------------------------------------------------

Result<std::unique_ptr<ControlServer>> ControlServer::open(uv_loop_t* loop, ControlServerOptions options,
                                                           Handler handler) {
  auto bound = os::bind_control_socket(options.path, options.mode, options.group);
  if (!bound) return Error{bound.error()};
  std::unique_ptr<ControlServer> server(new ControlServer(std::move(options), std::move(handler)));
  server->socket_dev_ = bound->dev;
  server->socket_ino_ = bound->ino;  // from here on the destructor unlinks the file
  if (Status st = server->listen(loop, std::move(bound->fd)); !st)
    return Error{"cannot listen on control socket '" + server->options_.path + "': " + st.error()};
  return server;
}

Result<std::unique_ptr<ControlServer>> ControlServer::adopt(uv_loop_t* loop, ControlServerOptions options,
                                                            AdoptedSocket socket, Handler handler) {
  std::unique_ptr<ControlServer> server(new ControlServer(std::move(options), std::move(handler)));
  server->socket_dev_ = static_cast<dev_t>(socket.dev);
  server->socket_ino_ = static_cast<ino_t>(socket.ino);
  ::fcntl(socket.fd, F_SETFD, FD_CLOEXEC);  // inheritable only for the exec that brought it here
  if (Status st = server->listen(loop, os::Fd(socket.fd)); !st) {
    return Error{"cannot listen on control socket '" + server->options_.path + "': adopting fd " +
                 std::to_string(socket.fd) + ": " + st.error()};
  }
  return server;
}

Status ControlServer::listen(uv_loop_t* loop, os::Fd fd) {
  StreamServer::Options stream{.name = "control socket '" + options_.path + "'",
                               .max_connections = options_.max_clients,
                               .read_chunk = 16 * 1024,
                               .backlog = SOMAXCONN};
  auto listening = StreamServer::listen_unix(loop, std::move(fd), std::move(stream),
                                             [this] { return std::make_shared<Connection>(*this); });
  if (!listening) return Error{listening.error()};
  stream_ = std::move(*listening);
  return Ok{};
}

ControlServer::AdoptedSocket ControlServer::socket() const {
  return AdoptedSocket{stream_->fd(), static_cast<std::uint64_t>(socket_dev_),
                       static_cast<std::uint64_t>(socket_ino_)};
}

ControlServer::ControlServer(ControlServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)), owner_uid_(::geteuid()) {}

ControlServer::~ControlServer() {
  stream_.reset();
  // Only our own file: if someone replaced it meanwhile, it is theirs.
  struct stat st {};
  if (socket_ino_ != 0 && ::lstat(options_.path.c_str(), &st) == 0 && st.st_dev == socket_dev_ &&
      st.st_ino == socket_ino_) {
    ::unlink(options_.path.c_str());
  }
}

std::size_t ControlServer::clients() const { return stream_ ? stream_->admitted() : 0; }

std::size_t ControlServer::unsent_bytes() const { return stream_ ? stream_->unsent_bytes() : 0; }

bool ControlServer::allowed(const os::PeerCredentials& peer) const {
  if (peer.uid == 0 || peer.uid == owner_uid_) return true;
  if (!options_.group) return false;
  if (peer.gid == *options_.group) return true;
  // From the socket (SO_PEERGROUPS), as they were at connect(): not /proc/<pid>, whose pid
  // may have been reused.
  return std::find(peer.groups.begin(), peer.groups.end(), *options_.group) != peer.groups.end();
}

ControlServer::Push ControlServer::follow_handling() {
  if (!handling_) return {};
  handling_->follow();
  std::weak_ptr<Connection> weak = handling_;
  return [weak](const json& message) {
    const auto self = weak.lock();
    return self ? self->push(message) : Pushed::gone;
  };
}

void ControlServer::closed() {
  // After a burst of requests glibc keeps the freed reply buffers (RssAnon rose from 0.5 to
  // 1.6 MB after 200,000 pipelined status requests, and malloc_trim(0) brought it back to
  // 0.5 MB): hand them back once the clients are gone.
  if (clients() == 0 && written_since_trim_ >= trim_after_bytes) {
    written_since_trim_ = 0;
    ::malloc_trim(0);
  }
}

}  // namespace preforkd::daemon
