#pragma once
// The control socket's language, shared by the master and preforkctl so they cannot drift.
//
// One JSON object per line each way. Requests:
//   {"cmd":"status"}  {"cmd":"reload"}  {"cmd":"stop"}  {"cmd":"upgrade"}
//   {"cmd":"scale","count":4}  {"cmd":"scale","delta":-1}
//   {"cmd":"restart","slots":"all"}  {"cmd":"restart","slots":[0,2]}
//   {"cmd":"logs","lines":10,"slots":[1],"follow":false}  (slots [] or absent: every slot)
// Replies: {"ok":true,...} or {"ok":false,"error":"..."}; the status reply carries the
// StatusSnapshot's "master", "workers" and "listeners" next to "ok".
//
// One header a concept: control_request.hpp (requests, both forms), control_reply.hpp
// (replies and log lines), status_snapshot.hpp (the status document).

#include <preforkd/core/control_reply.hpp>
#include <preforkd/core/control_request.hpp>
#include <preforkd/core/status_snapshot.hpp>
