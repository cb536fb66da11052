/* Balanced accept in the kernel: the rule that ranks a slot's listening socket for a new
 * connection. Shared by the eBPF program (reuseport_steer.bpf.c) and the unit tests
 * (tests/unit/test_steer_rank.cpp), so the rule has one home. Plain C, no kernel headers.
 *
 * The lowest rank wins:
 *  1. fewest connections queued (in the accept queue, or still in the handshake): a
 *     connection never waits behind another while a shorter queue exists;
 *  2. then a worker waiting for a connection (a thread asleep on the socket: blocked in
 *     accept, or in poll/select/epoll on it) before a busy one;
 *  3. then, among waiting workers, the one nearest after the connection's hash (spreads
 *     like the kernel's hash) or, for an adaptive pool, the lowest slot (packs the load
 *     on as few workers as serve it, so the workers above it wait and retire: the
 *     caller passes the slot's place in the live set as its distance); among busy
 *     ones, the one that got a connection most recently: it has been busy for the
 *     shortest time, so it is the likeliest to be done first (a worker stuck in a 3 s
 *     request is not picked just because every other worker is busy too). */
#ifndef PREFORKD_STEER_RANK_H
#define PREFORKD_STEER_RANK_H

/* The most slots a listener steers over: core/limits.hpp's max_workers (checked there). */
#define PREFORKD_STEER_MAX_SLOTS 1024

/* Ties below the queue and waiting bits: 0 .. 2^31-1 (a distance, or microseconds). */
#define PREFORKD_STEER_TIE_MAX 0x7fffffffULL

/* queued: connections in the queue and handshakes in progress; waiting: non-zero when a
 * thread sleeps on the socket; distance: how far after the hash's pick the slot is in
 * the live list, or packing, its place in the list (0 .. count-1); busy_for_us:
 * microseconds since this slot was last picked (a large value when never). */
static inline unsigned long long preforkd_steer_rank(unsigned int queued, int waiting, unsigned int distance,
                                                     unsigned long long busy_for_us)
{
    unsigned long long tie = waiting ? distance : busy_for_us;
    if (tie > PREFORKD_STEER_TIE_MAX) tie = PREFORKD_STEER_TIE_MAX;
    return ((unsigned long long)queued << 32) | ((unsigned long long)(waiting ? 0 : 1) << 31) | tie;
}

#endif
