#include <preforkd/daemon/uv/stream_server.hpp>

#include <preforkd/daemon/uv/uv_error.hpp>

#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <utility>

namespace preforkd::daemon {

namespace {

// One buffer written to a stream and owned until libuv is done with it: freed by
// on_written, which libuv always calls once the request was queued (with UV_ECANCELED if
// the stream closes first). The connection is found through stream->data, which UvHandle
// clears when it closes the handle.
struct WriteRequest {
  uv_write_t req{};
  std::string data;
  void (*done)(uv_stream_t* stream, std::size_t bytes, int status) = nullptr;
};

void on_written(uv_write_t* req, int status) {
  const std::unique_ptr<WriteRequest> w(static_cast<WriteRequest*>(req->data));
  w->done(req->handle, w->data.size(), status);
}

// Queues `data` on `stream`; libuv's error code if it cannot (then `done` is not called).
int write_owned(uv_stream_t* stream, std::string data, void (*done)(uv_stream_t*, std::size_t, int)) {
  auto w = std::make_unique<WriteRequest>();
  w->data = std::move(data);
  w->done = done;
  w->req.data = w.get();
  const uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (const int rc = uv_write(&w->req, stream, &buf, 1, &on_written); rc != 0) return rc;
  (void)w.release();  // on_written frees it
  return 0;
}

Result<sockaddr_storage> socket_address(const Address& a) {
  sockaddr_storage storage{};
  const int rc = a.family == AddressFamily::ipv6
                     ? uv_ip6_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in6*>(&storage))
                     : uv_ip4_addr(a.host.empty() ? "0.0.0.0" : a.host.c_str(), a.port,
                                   reinterpret_cast<sockaddr_in*>(&storage));
  if (rc != 0) return Error{std::string(uv_strerror(rc))};
  return storage;
}

}  // namespace

// --- one connection -------------------------------------------------------------------------

Status StreamConnection::open(uv_loop_t* loop, StreamServer& server, bool tcp) {
  server_ = &server;
  if (const int rc = tcp ? uv_tcp_init(loop, &socket_.get()->tcp) : uv_pipe_init(loop, &socket_.get()->pipe, 0);
      rc != 0) {
    return uv_error(tcp ? "uv_tcp_init" : "uv_pipe_init", server.options_.name, rc);
  }
  socket_.base()->data = this;
  if (const int rc = uv_timer_init(loop, deadline_.get()); rc != 0)
    return uv_error("uv_timer_init", server.options_.name, rc);
  deadline_.get()->data = this;
  chunk_size_ = server.options_.read_chunk;
  chunk_ = std::make_unique<char[]>(chunk_size_);
  return Ok{};
}

void StreamConnection::close() {
  if (closed_) return;
  const auto keep = shared_from_this();  // the server's reference goes below
  closed_ = true;
  reading_ = false;
  deadline_.close();
  socket_.close();
  if (server_ != nullptr) {
    server_->unsent_ -= unsent_;
    if (admitted_) --server_->admitted_;
    server_->forget(*this);
    on_close();
  }
  unsent_ = 0;
  admitted_ = false;
}

int StreamConnection::fd() {
  uv_os_fd_t fd = -1;
  if (closed_ || uv_fileno(socket_.base(), &fd) != 0) return -1;
  return fd;
}

StreamConnection::Admission StreamConnection::admit() {
  if (server_ == nullptr || closed_) return Admission::full;
  return server_->admit(*this);
}

Status StreamConnection::start_reading() {
  if (closed_) return Error{"uv_read_start: the connection is closed"};
  if (reading_) return Ok{};
  if (const int rc = uv_read_start(stream(), &StreamConnection::alloc, &StreamConnection::on_read); rc != 0)
    return uv_error("uv_read_start", "connection", rc);
  reading_ = true;
  return Ok{};
}

// uv_read_stop cannot fail (it returns 0 for any stream).
void StreamConnection::stop_reading() {
  if (!reading_) return;
  (void)uv_read_stop(stream());
  reading_ = false;
}

Status StreamConnection::write(std::string data) {
  if (closed_) return Error{"uv_write: the connection is closed"};
  const std::size_t bytes = data.size();
  if (const int rc = write_owned(stream(), std::move(data), &StreamConnection::on_written); rc != 0)
    return uv_error("uv_write", "connection", rc);
  unsent_ += bytes;
  if (server_ != nullptr) server_->unsent_ += bytes;
  ++pending_writes_;
  return Ok{};
}

Status StreamConnection::shutdown() {
  if (closed_) return Error{"uv_shutdown: the connection is closed"};
  auto req = std::make_unique<uv_shutdown_t>();
  if (const int rc = uv_shutdown(req.get(), stream(), &StreamConnection::on_shutdown); rc != 0)
    return uv_error("uv_shutdown", "connection", rc);
  (void)req.release();  // on_shutdown frees it
  return Ok{};
}

Status StreamConnection::arm(Duration after) {
  if (closed_) return Error{"uv_timer_start: the connection is closed"};
  const auto ms = static_cast<std::uint64_t>(std::max(after, Duration::zero()).count());
  if (const int rc = uv_timer_start(deadline_.get(), &StreamConnection::on_deadline, ms, 0); rc != 0)
    return uv_error("uv_timer_start", "connection", rc);
  return Ok{};
}

// uv_timer_stop cannot fail (it returns 0 for any timer).
void StreamConnection::disarm() {
  if (!closed_) (void)uv_timer_stop(deadline_.get());
}

void StreamConnection::read_failed(std::string_view) { close(); }

void StreamConnection::written(std::size_t, bool ok) {
  if (!ok) close();
}

void StreamConnection::alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<StreamConnection*>(h->data);
  *buf = self == nullptr ? uv_buf_init(nullptr, 0)
                         : uv_buf_init(self->chunk_.get(), static_cast<unsigned>(self->chunk_size_));
}

void StreamConnection::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* raw = static_cast<StreamConnection*>(s->data);
  if (raw == nullptr) return;
  const auto keep = raw->shared_from_this();
  if (n > 0) {
    raw->bytes_arrived(std::string_view(buf->base, static_cast<std::size_t>(n)));
  } else if (n == UV_EOF) {
    raw->reading_ = false;  // libuv stops reading at EOF
    raw->peer_closed();
  } else if (n < 0) {
    raw->read_failed(uv_strerror(static_cast<int>(n)));
  }
}

void StreamConnection::on_written(uv_stream_t* s, std::size_t bytes, int status) {
  auto* raw = static_cast<StreamConnection*>(s->data);
  if (raw == nullptr) return;  // closed: its bytes were taken off the count then
  const auto keep = raw->shared_from_this();
  --raw->pending_writes_;
  raw->unsent_ -= bytes;
  if (raw->server_ != nullptr) raw->server_->unsent_ -= bytes;
  raw->written(bytes, status >= 0);
}

void StreamConnection::on_shutdown(uv_shutdown_t* req, int status) {
  const std::unique_ptr<uv_shutdown_t> done(req);
  auto* raw = static_cast<StreamConnection*>(req->handle->data);
  if (raw == nullptr) return;
  const auto keep = raw->shared_from_this();
  raw->shut_down(status >= 0);
}

void StreamConnection::on_deadline(uv_timer_t* t) {
  auto* raw = static_cast<StreamConnection*>(t->data);
  if (raw == nullptr) return;
  const auto keep = raw->shared_from_this();
  raw->timed_out();
}

// --- the listening socket -------------------------------------------------------------------

StreamServer::StreamServer(uv_loop_t* loop, Options options, Make make, bool tcp)
    : loop_(loop), options_(std::move(options)), make_(std::move(make)), tcp_(tcp) {}

Result<std::unique_ptr<StreamServer>> StreamServer::listen_unix(uv_loop_t* loop, os::Fd fd, Options options,
                                                                Make make) {
  std::unique_ptr<StreamServer> server(new StreamServer(loop, std::move(options), std::move(make), false));
  uv_pipe_t* pipe = &server->listener_.get()->pipe;
  if (const int rc = uv_pipe_init(loop, pipe, 0); rc != 0)
    return uv_error("uv_pipe_init", server->options_.name, rc);
  server->listener_.base()->data = server.get();
  if (const int rc = uv_pipe_open(pipe, fd.get()); rc != 0) return Error{std::string(uv_strerror(rc))};
  (void)fd.release();  // the pipe handle owns it now
  if (Status st = server->listen(); !st) return Error{st.error()};
  return server;
}

Result<std::unique_ptr<StreamServer>> StreamServer::listen_tcp(uv_loop_t* loop, const Address& address,
                                                               Options options, Make make) {
  if (address.family == AddressFamily::unix_path) return Error{"must be a TCP address"};
  auto addr = socket_address(address);
  if (!addr) return Error{addr.error()};
  std::unique_ptr<StreamServer> server(new StreamServer(loop, std::move(options), std::move(make), true));
  uv_tcp_t* tcp = &server->listener_.get()->tcp;
  const int family = address.family == AddressFamily::ipv6 ? AF_INET6 : AF_INET;
  if (const int rc = uv_tcp_init_ex(loop, tcp, static_cast<unsigned>(family)); rc != 0)
    return uv_error("uv_tcp_init_ex", server->options_.name, rc);
  server->listener_.base()->data = server.get();
  // As for [[listen]]: an IPv6 address is IPv6 only ("[::]:9464" does not take IPv4).
  const unsigned flags = family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
  if (const int rc = uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&*addr), flags); rc != 0)
    return Error{std::string(uv_strerror(rc))};
  // libuv may report a bind error (EADDRINUSE) only at listen.
  if (Status st = server->listen(); !st) return Error{st.error()};
  return server;
}

Status StreamServer::listen() {
  if (const int rc =
          uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), options_.backlog, &StreamServer::on_connection);
      rc != 0) {
    return Error{std::string(uv_strerror(rc))};
  }
  return Ok{};
}

StreamServer::~StreamServer() {
  listener_.close();
  auto connections = std::move(connections_);
  connections_.clear();
  for (auto& [raw, connection] : connections) {
    connection->server_ = nullptr;
    connection->close();
  }
}

int StreamServer::fd() {
  uv_os_fd_t fd = -1;
  if (listener_.get() == nullptr || uv_fileno(listener_.base(), &fd) != 0) return -1;
  return fd;
}

void StreamServer::on_connection(uv_stream_t* listener, int status) {
  auto* self = static_cast<StreamServer*>(listener->data);
  if (self == nullptr) return;
  if (status < 0) {
    spdlog::warn("{}, ignoring", uv_failure("accept on", self->options_.name, status));
    return;
  }
  self->accept_one();
}

void StreamServer::accept_one() {
  auto connection = make_();
  if (Status st = connection->open(loop_, *this, tcp_); !st) {
    spdlog::warn("{}: failed to create a connection: {}, ignoring", options_.name, st.error());
    connection->server_ = nullptr;
    return;
  }
  connections_.emplace(connection.get(), connection);
  if (const int rc = uv_accept(reinterpret_cast<uv_stream_t*>(listener_.get()), connection->stream()); rc != 0) {
    spdlog::warn("{}, ignoring", uv_failure("uv_accept on", options_.name, rc));
    connection->server_ = nullptr;
    connections_.erase(connection.get());
    connection->close();
    return;
  }
  connection->accepted();
}

// Full: the connection that has waited longest makes room. False when none waits.
StreamConnection::Admission StreamServer::admit(StreamConnection& connection) {
  if (connection.admitted_) return StreamConnection::Admission::admitted;
  auto admission = StreamConnection::Admission::admitted;
  if (admitted_ >= options_.max_connections) {
    std::shared_ptr<StreamConnection> oldest;
    std::optional<StreamConnection::Clock::time_point> since;
    for (const auto& [raw, other] : connections_) {
      if (raw == &connection || !raw->admitted_) continue;
      const auto waiting = raw->waiting_since();
      if (waiting && (!oldest || *waiting < *since)) {
        oldest = other;
        since = waiting;
      }
    }
    if (!oldest) return StreamConnection::Admission::full;
    oldest->close();
    admission = StreamConnection::Admission::evicted;
  }
  connection.admitted_ = true;
  ++admitted_;
  return admission;
}

void StreamServer::forget(StreamConnection& connection) { connections_.erase(&connection); }

}  // namespace preforkd::daemon
