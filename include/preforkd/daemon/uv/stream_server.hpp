#pragma once
// One stream server on the loop, shared by the control socket (Unix) and the metrics
// endpoint (TCP): it listens on a socket, accepts, limits the connections it serves, and
// gives each connection reads, writes, a deadline, a write shutdown and a close. It knows
// no protocol: a protocol derives its connection from StreamConnection and answers the
// events ("bytes arrived", "peer closed", "read failed", "written", "timed out").
//
// Every libuv call is made and checked here; a connection's C callbacks find it through
// handle->data, which UvHandle clears when the handle closes, so no event comes after
// close(). A connection is kept alive by its server until it closes, and during each of
// its events.

#include <preforkd/core/address.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>
#include <preforkd/daemon/uv/uv_handle.hpp>
#include <preforkd/os/fd.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace preforkd::daemon {

class StreamServer;

class StreamConnection : public std::enable_shared_from_this<StreamConnection> {
 public:
  using Clock = std::chrono::steady_clock;

  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;
  virtual ~StreamConnection() = default;

  // Closes the socket and the deadline (queued writes are cancelled) and leaves the server.
  // No event follows. Safe to call again, and from inside an event.
  void close();
  [[nodiscard]] bool closed() const { return closed_; }
  // Served by its server; false once the server has gone (then close() tells it nothing).
  [[nodiscard]] bool attached() const { return server_ != nullptr; }
  [[nodiscard]] Clock::time_point accepted_at() const { return accepted_at_; }
  // The connected socket's fd, -1 once closed.
  [[nodiscard]] int fd();

  // Asks the server to count this connection among the ones it serves (at most
  // max_connections). When full, the connection that has waited longest (waiting_since())
  // is closed to make room: `evicted`; `full` when none waits (this one is not counted).
  enum class Admission { admitted, evicted, full };
  [[nodiscard]] Admission admit();

  // bytes_arrived / peer_closed / read_failed follow until stop_reading() or close().
  // The error names the libuv call.
  [[nodiscard]] Status start_reading();
  void stop_reading();
  [[nodiscard]] bool reading() const { return reading_; }
  // Queues `data`; written() follows exactly once unless the connection closes first.
  [[nodiscard]] Status write(std::string data);
  // Bytes queued and not yet taken by the kernel (a client that does not read), and the
  // writes they belong to.
  [[nodiscard]] std::size_t unsent_bytes() const { return unsent_; }
  [[nodiscard]] int pending_writes() const { return pending_writes_; }
  // Shuts the write side down once the queued writes are done; shut_down() follows.
  [[nodiscard]] Status shutdown();
  // timed_out() after `after` (arming again replaces the previous deadline).
  [[nodiscard]] Status arm(Duration after);
  void disarm();

 protected:
  StreamConnection() = default;

  // The socket is accepted: the protocol checks the peer, admits, reads.
  virtual void accepted() = 0;
  virtual void bytes_arrived(std::string_view data) = 0;
  // End of file: the client closed its side (perhaps only its write side).
  virtual void peer_closed() = 0;
  // A read error (the connection reset): closes, unless the protocol says otherwise.
  virtual void read_failed(std::string_view why);
  // `bytes` of one write() were taken by the kernel (ok), or could not be (the client has
  // gone): closes then, unless the protocol says otherwise.
  virtual void written(std::size_t bytes, bool ok);
  virtual void shut_down(bool /*ok*/) {}
  virtual void timed_out() = 0;
  // After close(), while still attached: the protocol's own bookkeeping.
  virtual void on_close() {}
  // Since when this connection has held its place without need (the server, when full,
  // closes the one that has waited longest); nullopt: never closed to make room. By
  // default: since its accept.
  [[nodiscard]] virtual std::optional<Clock::time_point> waiting_since() const { return accepted_at_; }

 private:
  friend class StreamServer;
  [[nodiscard]] Status open(uv_loop_t* loop, StreamServer& server, bool tcp);
  [[nodiscard]] uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(socket_.get()); }
  static void alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void on_written(uv_stream_t* s, std::size_t bytes, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_deadline(uv_timer_t* t);

  StreamServer* server_ = nullptr;
  UvHandle<uv_any_handle> socket_;  // a uv_pipe_t or a uv_tcp_t, as the listener
  UvHandle<uv_timer_t> deadline_;
  std::unique_ptr<char[]> chunk_;
  std::size_t chunk_size_ = 0;
  Clock::time_point accepted_at_ = Clock::now();
  std::size_t unsent_ = 0;
  int pending_writes_ = 0;
  bool reading_ = false;
  bool admitted_ = false;
  bool closed_ = false;
};

class StreamServer {
 public:
  struct Options {
    std::string name;                // names the socket in the log: "control socket '/run/p.sock'"
    std::size_t max_connections = 0;  // admitted at once
    std::size_t read_chunk = 4096;    // bytes read at a time, per connection
    int backlog = 128;
  };
  // Makes the protocol's connection for a socket about to be accepted.
  using Make = std::function<std::shared_ptr<StreamConnection>()>;

  // Listens on a bound Unix stream socket, which the server owns from then on (closed if it
  // cannot listen). The error is libuv's reason.
  [[nodiscard]] static Result<std::unique_ptr<StreamServer>> listen_unix(uv_loop_t* loop, os::Fd fd, Options options,
                                                                         Make make);
  // Binds a TCP address (IPv4 or IPv6; an IPv6 one is IPv6 only) and listens. The error is
  // the reason ("address already in use"), or names the libuv call that failed before bind.
  [[nodiscard]] static Result<std::unique_ptr<StreamServer>> listen_tcp(uv_loop_t* loop, const Address& address,
                                                                        Options options, Make make);
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;
  // Closes the listener and every connection (without telling them: on_close() is not called).
  ~StreamServer();

  // The listening socket's fd (-1 if closed).
  [[nodiscard]] int fd();
  // Connections open (admitted or not), and those admitted.
  [[nodiscard]] std::size_t connections() const { return connections_.size(); }
  [[nodiscard]] std::size_t admitted() const { return admitted_; }
  // Bytes written by every connection and not yet taken by the kernel.
  [[nodiscard]] std::size_t unsent_bytes() const { return unsent_; }

 private:
  friend class StreamConnection;
  StreamServer(uv_loop_t* loop, Options options, Make make, bool tcp);
  [[nodiscard]] Status listen();
  static void on_connection(uv_stream_t* listener, int status);
  void accept_one();
  [[nodiscard]] StreamConnection::Admission admit(StreamConnection& connection);
  void forget(StreamConnection& connection);

  uv_loop_t* loop_;
  Options options_;
  Make make_;
  bool tcp_;
  UvHandle<uv_any_handle> listener_;
  std::unordered_map<StreamConnection*, std::shared_ptr<StreamConnection>> connections_;
  std::size_t admitted_ = 0;
  std::size_t unsent_ = 0;
};

}  // namespace preforkd::daemon
