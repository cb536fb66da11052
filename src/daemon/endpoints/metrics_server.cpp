#include <preforkd/daemon/endpoints/metrics_server.hpp>

#include <preforkd/core/http_request.hpp>
#include <preforkd/core/metrics_text.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <string_view>
#include <utility>

namespace preforkd::daemon {
namespace {

// How long a connection stays open after its answer, reading and discarding what the client
// still sends, so that closing does not reset the connection before the client has read
// the answer (unread input makes the kernel send RST instead of FIN).
constexpr Duration linger = std::chrono::seconds(1);

}  // namespace

// --- one client: one HTTP request, one answer -------------------------------------------------

class MetricsServer::Connection final : public StreamConnection {
 public:
  explicit Connection(MetricsServer& server) : server_(&server) {}

 private:
  void accepted() override {
    // Full: the oldest connection goes. A scraper answers within milliseconds, so the oldest
    // is a client that holds its connection without asking (or without reading).
    const auto admission = admit();
    if (admission == Admission::evicted)
      spdlog::debug("{}: {} connections open; closing the oldest", server_->where(), server_->options_.max_clients);
    if (admission == Admission::full) return close();
    if (Status st = arm(server_->options_.deadline); !st) return fail(st.error());
    if (Status st = start_reading(); !st) return fail(st.error());
  }

  void bytes_arrived(std::string_view data) override {
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

  // EOF (or a reset) before a whole request, or after the answer: either way there is
  // nothing to do. (A client that half-closes after its request has had its answer already.)
  void peer_closed() override {
    if (!answered_ || shut_down_) return close();
    eof_ = true;
    stop_reading();
  }
  void read_failed(std::string_view) override { peer_closed(); }

  void timed_out() override {
    if (!answered_) spdlog::debug("metrics: closing a connection without a complete request after its deadline");
    close();
  }

  void written(std::size_t, bool ok) override {
    if (!ok) return close();
    if (Status st = shutdown(); !st) fail(st.error());
  }

  void shut_down(bool ok) override {
    shut_down_ = true;
    if (!ok || eof_) return close();
    // Wait (briefly) for the client to close its side, discarding what it still sends.
    if (Status st = arm(linger); !st) fail(st.error());
  }

  void respond(http::Response response) {
    answered_ = true;
    buffer_.clear();
    buffer_.shrink_to_fit();
    if (!attached()) return close();
    const std::size_t unsent = server_->stream_->unsent_bytes();
    if (response.status == 200 && unsent + response.body.size() > server_->options_.max_unsent_bytes) {
      spdlog::warn("metrics: {} bytes of answers wait for slow clients; answering 503", unsent);
      response = http::error_response(503);
    }
    if (Status st = write(http::serialize(response)); !st) close();
  }

  // A libuv call that should not fail did: the connection cannot go on.
  void fail(const std::string& why) {
    spdlog::warn("{}: {}, closing a connection", server_->where(), why);
    close();
  }

  MetricsServer* server_;
  std::string buffer_;
  bool answered_ = false;
  bool shut_down_ = false;
  bool eof_ = false;
};

// --- the listening socket ------------------------------------------------------------------

Result<std::unique_ptr<MetricsServer>> MetricsServer::open(uv_loop_t* loop, MetricsServerOptions options,
                                                           Render render) {
  std::unique_ptr<MetricsServer> server(new MetricsServer(std::move(options), std::move(render)));
  MetricsServer* raw = server.get();
  StreamServer::Options stream{.name = raw->where(),
                               .max_connections = raw->options_.max_clients,
                               .read_chunk = 4096,
                               .backlog = 128};
  auto listening = StreamServer::listen_tcp(loop, raw->options_.address, std::move(stream),
                                            [raw] { return std::make_shared<Connection>(*raw); });
  if (!listening) {
    if (raw->options_.address.family == AddressFamily::unix_path) return Error{raw->where() + ": " + listening.error()};
    return Error{"cannot bind " + raw->where() + ": " + listening.error()};
  }
  server->stream_ = std::move(*listening);
  return server;
}

MetricsServer::MetricsServer(MetricsServerOptions options, Render render)
    : options_(std::move(options)), render_(std::move(render)) {}

MetricsServer::~MetricsServer() = default;

std::string MetricsServer::where() const { return "metrics_listen '" + options_.address.text + "'"; }

std::size_t MetricsServer::clients() const { return stream_->connections(); }

}  // namespace preforkd::daemon
