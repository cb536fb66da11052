#pragma once
// The master's control socket: a Unix stream server on the loop that reads one JSON
// request per line, hands it to the supervisor, and writes one JSON reply per line.
//
// Hard limits, since any allowed local user can connect (values in core/limits.hpp):
// - a request line is at most control::max_request_bytes;
// - a request must be complete within idle_timeout of the connection or of the previous
//   reply, however slowly its bytes trickle in; a connection idle that long is closed;
// - at most max_unsent_bytes of replies wait for one client to read them; past that its
//   requests are not read until it reads;
// - at most max_clients connections are served at once. When full, the connection that has
//   waited longest for a complete request (silent or trickling) is closed to make room;
//   when none is waiting, the newcomer is told so and closed.
// None of these ever stops the server for anyone else.
//
// Peers are checked with SO_PEERCRED and SO_PEERGROUPS when they connect: root, the
// master's effective uid and members of the control group (primary or supplementary) are
// served; anyone else gets an error reply, a warning in the log, and a closed connection.

#include <preforkd/core/control_protocol.hpp>
#include <preforkd/core/limits.hpp>
#include <preforkd/core/result.hpp>
#include <preforkd/core/units.hpp>
#include <preforkd/daemon/uv/stream_server.hpp>
#include <preforkd/os/fd.hpp>
#include <preforkd/os/proc_stats.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>

namespace preforkd::daemon {

struct ControlServerOptions {
  // Connections served at once. A status request takes well under a millisecond, so this
  // only matters against a client that opens connections and holds them.
  static constexpr std::size_t default_max_clients = limits::control_clients;
  // How long a connection may take to complete a request (or to read a reply) before it is
  // closed. preforkctl sends its request as soon as it connects.
  static constexpr Duration default_idle_timeout = limits::control_request_deadline;
  // Reply bytes one client may leave unread before its requests stop being read.
  static constexpr std::size_t default_max_unsent_bytes = limits::control_unsent_bytes;

  std::string path;
  mode_t mode = 0600;
  std::optional<gid_t> group;  // control_group: may connect; owns the socket file
  std::size_t max_clients = default_max_clients;
  Duration idle_timeout = default_idle_timeout;
  std::size_t max_unsent_bytes = default_max_unsent_bytes;
};

class ControlServer {
 public:
  // Sends the reply to the request it was given; call it exactly once, on the loop, now or
  // later (a reload replies when it is done). A reply for a client that has gone, or for a
  // server that has been destroyed, is dropped.
  using Responder = std::function<void(nlohmann::json reply)>;
  // Called on the loop for each valid request. Requests on one connection are handed over
  // one at a time: the next waits until the responder of this one has been called.
  using Handler = std::function<void(const control::Request&, Responder)>;

  // Creates the socket safely: the parent directory is made if missing (0755, or 0750 and
  // owned by the group when one is set); an existing socket is replaced only if nobody
  // answers on it; anything else at the path is left alone and open() fails. The socket is
  // bound under umask 0177, then given `mode` and the group.
  [[nodiscard]] static Result<std::unique_ptr<ControlServer>> open(uv_loop_t* loop, ControlServerOptions options,
                                                                   Handler handler);
  // The listening socket as an in-place upgrade hands it on: the fd, and the socket
  // file's device and inode (removed at the end while it is still that file).
  struct AdoptedSocket {
    int fd = -1;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
  };
  // Serves an already listening socket that the previous image of this process left
  // (preforkctl upgrade): nothing is bound, nothing is checked.
  [[nodiscard]] static Result<std::unique_ptr<ControlServer>> adopt(uv_loop_t* loop, ControlServerOptions options,
                                                                    AdoptedSocket socket, Handler handler);
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;
  // Closes every connection (pending replies are dropped) and removes the socket file, if
  // it is still the one this server created.
  ~ControlServer();

  [[nodiscard]] const std::string& path() const { return options_.path; }
  // Connections being served (not counting refused ones that are being closed).
  [[nodiscard]] std::size_t clients() const;
  // Reply bytes written but not yet taken by the clients, over all connections.
  [[nodiscard]] std::size_t unsent_bytes() const;
  [[nodiscard]] AdoptedSocket socket() const;
  // While the handler runs: the fd of the connection whose request it was given (-1
  // otherwise). An upgrade passes it to the new image, which answers on it.
  [[nodiscard]] int handling_fd() const { return handling_fd_; }

  // A streaming reply (preforkctl logs -f): the connection stays open after its reply and
  // gets more messages, one JSON line each, until the client hangs up or the server goes.
  // It reads no more requests and has no deadline; what it sends is ignored. A message
  // that would put it past max_unsent_bytes of unread replies is not sent (dropped): a
  // slow follower never makes the master hold more than that for it. A null message sends
  // nothing: it only asks whether the client is still there.
  enum class Pushed { sent, dropped, gone };
  using Push = std::function<Pushed(const nlohmann::json& message)>;
  // While the handler runs: makes the connection whose request it was given a follower
  // (after the reply it is given), and returns what sends to it. Empty outside a handler.
  [[nodiscard]] Push follow_handling();

 private:
  class Connection;
  ControlServer(ControlServerOptions options, Handler handler);

  [[nodiscard]] Status listen(uv_loop_t* loop, os::Fd fd);
  [[nodiscard]] bool allowed(const os::PeerCredentials& peer) const;
  void closed();  // a connection has closed

  ControlServerOptions options_;
  Handler handler_;
  uid_t owner_uid_;
  dev_t socket_dev_ = 0;
  ino_t socket_ino_ = 0;
  std::unique_ptr<StreamServer> stream_;
  int handling_fd_ = -1;
  std::shared_ptr<Connection> handling_;  // while the handler runs
  // Reply bytes written since the allocator was last trimmed (see closed()).
  static constexpr std::size_t trim_after_bytes = 1024 * 1024;
  std::size_t written_since_trim_ = 0;
};

}  // namespace preforkd::daemon
