#pragma once
// What an observer of the slots (slot_view.hpp) tells the supervisor back: the one way in
// for the watches and the usage sampler, Supervisor::submit(). Plain values naming the
// slot and the process they are about; an input about a process that is no longer the
// one named is ignored.

#include <preforkd/daemon/supervision/slot_view.hpp>

#include <sys/types.h>

#include <string>
#include <variant>

namespace preforkd::daemon {

// The stall watch found the ready worker `pid` of `slot` stalled (`note` says how): it
// is stopped and replaced as after a crash. Ignored when that worker is no longer the
// slot's ready one.
struct Stalled {
  int slot = 0;
  pid_t pid = -1;
  std::string note;  // "3 connections queued, none taken for 1.2s"
};

// The readiness watch saw worker `pid` waiting for connections on its own socket
// (ready = "accepting"): it becomes ready. Ignored for a process that is no worker.
struct SeenAccepting {
  pid_t pid = -1;
};

// The usage sampler's figures for the current run of `slot` (the only writer of them).
struct UsageSampled {
  int slot = 0;
  Usage usage;
};

using WorkerInput = std::variant<Stalled, SeenAccepting, UsageSampled>;

}  // namespace preforkd::daemon
