// Sockets taken back from systemd's fd store into a ListenerSet
// (src/os/listener_inherited.cpp).

#include <fcntl.h>

#include "listener_helpers.hpp"

using namespace listener_test;

TEST_CASE("sockets taken back from the fd store get the configured O_NONBLOCK whatever they had") {
  for (const bool non_blocking : {false, true}) {
    INFO("non_blocking = " << non_blocking);
    ListenConfig http = tcp4("http", free_port());
    http.non_blocking = non_blocking;
    // As a previous master left it in the store: the other flag.
    ListenConfig previous = http;
    previous.non_blocking = !non_blocking;
    auto old = ListenerSet::open({previous}, 1);
    REQUIRE(old.ok());
    const int stored = ::fcntl(old->fds_for_slot(0).at(0), F_DUPFD_CLOEXEC, 3);
    REQUIRE(stored >= 0);
    auto taken = ListenerSet::take_inherited({http}, 2, {{stored}});
    REQUIRE(taken.ok());
    for (int slot = 0; slot < 2; ++slot)
      CHECK(((::fcntl(taken->fds_for_slot(slot).at(0), F_GETFL) & O_NONBLOCK) != 0) == non_blocking);
  }
}
