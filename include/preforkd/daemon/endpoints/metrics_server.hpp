#pragma once
// The Prometheus endpoint: a tiny HTTP/1.x server on the master's loop that answers
// GET /metrics ([preforkd] metrics_listen). One request per connection (Connection: close).
//
// Hard limits, since anyone who can reach the address can connect:
// - a request head is at most http::max_head_bytes; a longer one gets 431 and is closed;
// - a connection has `deadline` from its accept to be answered and to read the answer;
//   then it is closed, however slowly its bytes trickle in;
// - at most max_clients connections at once; when full, the oldest one is closed to make
//   room, so silent clients can never lock a scraper out;
// - at most max_unsent_bytes of answers wait for clients to read them; past that a scrape
//   gets 503 until they do.
// The body is rendered on the loop when a request is complete; nothing here blocks.

#include <preforkd/core/address.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>
#include <preforkd/daemon/uv/stream_server.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace preforkd::daemon {

struct MetricsServerOptions {
  static constexpr std::size_t default_max_clients = 64;
  static constexpr Duration default_deadline = std::chrono::seconds(10);
  static constexpr std::size_t default_max_unsent_bytes = 16 * 1024 * 1024;

  Address address;  // a TCP address (IPv4 or IPv6)
  std::size_t max_clients = default_max_clients;
  Duration deadline = default_deadline;
  std::size_t max_unsent_bytes = default_max_unsent_bytes;
};

class MetricsServer {
 public:
  // The exposition text, rendered when a scrape asks for it.
  using Render = std::function<std::string()>;

  // Binds and listens; an error names the address and why ("address already in use").
  [[nodiscard]] static Result<std::unique_ptr<MetricsServer>> open(uv_loop_t* loop, MetricsServerOptions options,
                                                                   Render render);
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  // Closes the listener and every connection.
  ~MetricsServer();

  [[nodiscard]] const std::string& address() const { return options_.address.text; }
  [[nodiscard]] std::size_t clients() const;

 private:
  class Connection;
  MetricsServer(MetricsServerOptions options, Render render);
  // "metrics_listen '<address>'", as errors and the log name it.
  [[nodiscard]] std::string where() const;

  MetricsServerOptions options_;
  Render render_;
  std::unique_ptr<StreamServer> stream_;
};

}  // namespace preforkd::daemon
