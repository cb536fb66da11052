#include <preforkd/daemon/endpoints/metrics_server.hpp>

#include <preforkd/core/http_request.hpp>
#include <preforkd/core/metrics_text.hpp>
#include <preforkd/daemon/uv/stream_write.hpp>

#include <spdlog/spdlog.h>

#include <netinet/in.h>

#include <string_view>
#include <utility>

namespace preforkd::daemon {
namespace {

// How long a connection stays open after its answer, reading and discarding what the client
// still sends, so that closing does not reset the connection before the client has read
// the answer (unread input makes the kernel send RST instead of FIN).
constexpr std::uint64_t linger_ms = 1000;

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

// --- one client ----------------------------------------------------------------------------

class MetricsServer::Connection : public std::enable_shared_from_this<Connection> {
  struct Private {};

 public:
  Connection(Private, MetricsServer& server) : server_(&server), accepted_(uv_hrtime()) {}

  static Result<std::shared_ptr<Connection>> open(MetricsServer& server, uv_loop_t* loop) {
    auto c = std::make_shared<Connection>(Private{}, server);
    if (const int rc = uv_tcp_init(loop, c->tcp_.get()); rc != 0)
      return Error{std::string("uv_tcp_init: ") + uv_strerror(rc)};
    c->tcp_.get()->data = c.get();
    if (const int rc = uv_timer_init(loop, c->timer_.get()); rc != 0)
      return Error{std::string("uv_timer_init: ") + uv_strerror(rc)};
    c->timer_.get()->data = c.get();
    return c;
  }

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(tcp_.get()); }
  [[nodiscard]] std::uint64_t accepted() const { return accepted_; }

  void start() {
    const auto ms = static_cast<std::uint64_t>(server_->options_.deadline.count());
    uv_timer_start(timer_.get(), &Connection::on_timer, ms, 0);
    if (uv_read_start(stream(), &Connection::alloc, &Connection::on_read) != 0) close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (timer_.get() != nullptr) uv_timer_stop(timer_.get());
    timer_.close();
    tcp_.close();
    if (server_ != nullptr) {
      server_->unsent_ -= unsent_;
      unsent_ = 0;
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
    } else if (n < 0) {
      // EOF before a whole request, or after the answer: either way there is nothing to do.
      // (A client that half-closes after its request has had its answer already.)
      if (!raw->answered_ || raw->shut_down_) {
        raw->close();
      } else {
        raw->eof_ = true;
        uv_read_stop(raw->stream());
      }
    }
  }

  static void on_timer(uv_timer_t* t) {
    auto* raw = static_cast<Connection*>(t->data);
    if (raw == nullptr) return;
    const auto keep = raw->shared_from_this();
    if (!raw->answered_) spdlog::debug("metrics: closing a connection without a complete request after its deadline");
    raw->close();
  }

  static void on_write(uv_stream_t* s, std::size_t, int status) {
    auto* raw = static_cast<Connection*>(s->data);
    if (raw == nullptr) return;
    const auto keep = raw->shared_from_this();
    if (raw->server_ != nullptr) raw->server_->unsent_ -= raw->unsent_;
    raw->unsent_ = 0;
    if (status < 0) return raw->close();
    raw->shut_down_write();
  }

  static void on_shutdown(uv_shutdown_t* req, int status) {
    const std::unique_ptr<uv_shutdown_t> done(req);
    auto* raw = static_cast<Connection*>(req->handle->data);
    if (raw == nullptr) return;
    const auto keep = raw->shared_from_this();
    raw->shut_down_ = true;
    if (status < 0 || raw->eof_) return raw->close();
    // Wait (briefly) for the client to close its side, discarding what it still sends.
    uv_timer_stop(raw->timer_.get());
    uv_timer_start(raw->timer_.get(), &Connection::on_timer, linger_ms, 0);
  }

  void consume(std::string_view data) {
    if (answered_) return;  // discarded: one request per connection
    buffer_.append(data);
    const http::HeadScan scan = http::scan_head(buffer_);
    switch (scan.kind) {
      case http::HeadScan::Kind::incomplete:
        return;
      case http::HeadScan::Kind::too_large:
        spdlog::debug("metrics: request head longer than {} bytes, closing", http::max_head_bytes);
        return respond(http::error_response(431));
      case http::HeadScan::Kind::complete:
        break;
    }
    const std::string_view head = std::string_view(buffer_).substr(0, scan.length);
    MetricsServer& server = *server_;
    respond(http::answer(head, "/metrics", metrics::content_type, [&server] { return server.render_(); }));
  }

  void respond(http::Response response) {
    answered_ = true;
    buffer_.clear();
    buffer_.shrink_to_fit();
    if (response.status == 200 && server_->unsent_ + response.body.size() > server_->options_.max_unsent_bytes) {
      spdlog::warn("metrics: {} bytes of answers wait for slow clients; answering 503", server_->unsent_);
      response = http::error_response(503);
    }
    std::string answer = http::serialize(response);
    const std::size_t bytes = answer.size();
    if (write_owned(stream(), std::move(answer), &Connection::on_write) != 0) return close();
    unsent_ = bytes;
    server_->unsent_ += unsent_;
  }

  void shut_down_write() {
    auto req = std::make_unique<uv_shutdown_t>();
    if (uv_shutdown(req.get(), stream(), &Connection::on_shutdown) != 0) return close();
    (void)req.release();  // on_shutdown frees it
  }

  MetricsServer* server_;
  UvHandle<uv_tcp_t> tcp_;
  UvHandle<uv_timer_t> timer_;
  std::string buffer_;
  char chunk_[4096];
  std::uint64_t accepted_;
  std::size_t unsent_ = 0;
  bool answered_ = false;
  bool shut_down_ = false;
  bool eof_ = false;
  bool closed_ = false;
};

// --- the listening socket ------------------------------------------------------------------

Result<std::unique_ptr<MetricsServer>> MetricsServer::open(uv_loop_t* loop, MetricsServerOptions options,
                                                           Render render) {
  const std::string where = "metrics_listen '" + options.address.text + "'";
  if (options.address.family == AddressFamily::unix_path) return Error{where + ": must be a TCP address"};
  auto addr = socket_address(options.address);
  if (!addr) return Error{"cannot bind " + where + ": " + addr.error()};
  std::unique_ptr<MetricsServer> server(new MetricsServer(loop, std::move(options), std::move(render)));
  uv_tcp_t* tcp = server->listener_.get();
  const int family = server->options_.address.family == AddressFamily::ipv6 ? AF_INET6 : AF_INET;
  if (const int rc = uv_tcp_init_ex(loop, tcp, static_cast<unsigned>(family)); rc != 0)
    return Error{"cannot bind " + where + ": uv_tcp_init_ex: " + uv_strerror(rc)};
  tcp->data = server.get();
  // As for [[listen]]: an IPv6 address is IPv6 only ("[::]:9464" does not take IPv4).
  const unsigned flags = family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
  if (const int rc = uv_tcp_bind(tcp, reinterpret_cast<const sockaddr*>(&*addr), flags); rc != 0)
    return Error{"cannot bind " + where + ": " + uv_strerror(rc)};
  // libuv may report a bind error (EADDRINUSE) only here.
  if (const int rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 128, &MetricsServer::on_connection); rc != 0)
    return Error{"cannot bind " + where + ": " + uv_strerror(rc)};
  return server;
}

MetricsServer::MetricsServer(uv_loop_t* loop, MetricsServerOptions options, Render render)
    : loop_(loop), options_(std::move(options)), render_(std::move(render)) {}

MetricsServer::~MetricsServer() {
  listener_.close();
  auto connections = std::move(connections_);
  connections_.clear();
  for (auto& [raw, connection] : connections) connection->detach();
}

void MetricsServer::on_connection(uv_stream_t* listener, int status) {
  auto* self = static_cast<MetricsServer*>(listener->data);
  if (self == nullptr) return;
  if (status < 0) {
    spdlog::warn("metrics_listen '{}': accept: {}, ignoring", self->address(), uv_strerror(status));
    return;
  }
  self->accept_one();
}

void MetricsServer::accept_one() {
  auto opened = Connection::open(*this, loop_);
  if (!opened) {
    spdlog::warn("metrics_listen '{}': {}, ignoring", address(), opened.error());
    return;
  }
  auto connection = std::move(*opened);
  if (connections_.size() >= options_.max_clients) make_room();
  connections_.emplace(connection.get(), connection);
  if (const int rc = uv_accept(reinterpret_cast<uv_stream_t*>(listener_.get()), connection->stream()); rc != 0) {
    spdlog::warn("metrics_listen '{}': accept: {}, ignoring", address(), uv_strerror(rc));
    connection->close();
    return;
  }
  connection->start();
}

// Full: the oldest connection goes. A scraper answers within milliseconds, so the oldest is
// a client that holds its connection without asking (or without reading).
void MetricsServer::make_room() {
  std::shared_ptr<Connection> oldest;
  for (const auto& [raw, connection] : connections_) {
    if (!oldest || connection->accepted() < oldest->accepted()) oldest = connection;
  }
  if (!oldest) return;
  spdlog::debug("metrics_listen '{}': {} connections open; closing the oldest", address(), connections_.size());
  oldest->close();
}

void MetricsServer::forget(Connection* connection) { connections_.erase(connection); }

}  // namespace preforkd::daemon
