/* Balanced accept in the kernel (balance = "load" where eBPF is allowed): an
 * SK_REUSEPORT program attached to one listener's reuseport group. For each new
 * connection it reads, for every live slot, the slot socket's accept queue and whether a
 * thread sleeps on it (its wait queue is not empty: a worker blocked in accept, or in
 * poll/select/epoll on the socket), ranks the slots with preforkd_steer_rank() and sends
 * the connection to the best one. Nothing is sampled: the state is the kernel's own, at
 * the moment the SYN arrives.
 *
 * Maps, written by the master (src/os/reuseport_ebpf.cpp):
 *   sockets    slot -> that slot's listening socket (a SOCKMAP, to select from)
 *   live       the slots new connections may go to (the supervisor's live set), and
 *              whether to pack (an adaptive pool: among waiting workers the lowest slot
 *              wins), twice: the master writes the entry not in use, then flips
 *              live_in_use to it, so a connection never sees a set half written
 * and by this program:
 *   picked_at  slot -> when a connection was last sent there (ns, for the busy tie-break)
 *   outcomes   per CPU: connections sent to a waiting worker, to a busy one, left to the
 *              kernel's hash (no live slot, or the group could not be read)
 *
 * Kernel structures are read through bpf_rdonly_cast() (Linux 6.2+) with CO-RE field
 * offsets (libbpf relocates them against /sys/kernel/btf/vmlinux at load time), so the
 * program needs no kernel headers and runs on any kernel with BTF. Every read is of an
 * untrusted pointer: a fault reads 0, never crashes. */
#include <linux/bpf.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "steer_rank.h"

/* The fields read, as CO-RE relocatable declarations (names as in the kernel). */
struct list_head {
    struct list_head *next;
} __attribute__((preserve_access_index));
struct wait_queue_head {
    struct list_head head;
} __attribute__((preserve_access_index));
struct socket_wq {
    struct wait_queue_head wait;
} __attribute__((preserve_access_index));
struct sock_reuseport {
    unsigned short num_socks;
    struct sock *socks[];
} __attribute__((preserve_access_index));
struct sock {
    struct socket_wq *sk_wq;
    unsigned int sk_ack_backlog;
    struct sock_reuseport *sk_reuseport_cb;
} __attribute__((preserve_access_index));
typedef struct {
    int counter;
} atomic_t;
struct request_sock_queue {
    atomic_t qlen;
} __attribute__((preserve_access_index));
struct inet_connection_sock {
    struct request_sock_queue icsk_accept_queue;
} __attribute__((preserve_access_index));

extern void *bpf_rdonly_cast(void *obj, __u32 btf_id) __ksym;

struct live_slots {
    __u32 count;
    __u32 pack; /* non-zero: the waiting tie-break is the slot's place in the set, not the hash's */
    __u32 slots[PREFORKD_STEER_MAX_SLOTS];
};

enum outcome { to_waiting = 0, to_busy = 1, to_hash = 2, outcome_count = 3 };

struct {
    __uint(type, BPF_MAP_TYPE_SOCKMAP);
    __uint(max_entries, PREFORKD_STEER_MAX_SLOTS);
    __type(key, __u32);
    __type(value, __u64);
} sockets SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, struct live_slots);
} live SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} live_in_use SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, PREFORKD_STEER_MAX_SLOTS);
    __type(key, __u32);
    __type(value, __u64);
} picked_at SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, outcome_count);
    __type(key, __u32);
    __type(value, __u64);
} outcomes SEC(".maps");

struct scan {
    struct live_slots *live;
    __u64 socks;      /* address of the group's socks[] array */
    __u32 num_socks;  /* its length */
    __u32 start;      /* the hash's pick, an index into live->slots */
    __u64 now;
    __u64 best_rank;
    __u32 best_slot;
    __u32 best_waiting;
};

static void count(__u32 what)
{
    __u64 *n = bpf_map_lookup_elem(&outcomes, &what);
    if (n) *n += 1;
}

/* One live slot, the k-th after the hash's pick. */
static long visit(__u64 k, void *data)
{
    struct scan *s = data;
    __u32 n = s->live->count;
    if (n > PREFORKD_STEER_MAX_SLOTS || k >= n) return 1;
    __u32 pos = s->start + (__u32)k;
    if (pos >= n) pos -= n;
    if (pos >= PREFORKD_STEER_MAX_SLOTS) return 1;
    __u32 slot = s->live->slots[pos];
    /* Slot i is index i of the group (listener_set.hpp): only ever added and removed at the end. */
    if (slot >= s->num_socks) return 0;

    /* socks[slot], read as the first pointer of a list_head at that address. */
    struct list_head *cell = bpf_rdonly_cast((void *)(s->socks + (__u64)slot * sizeof(void *)),
                                             bpf_core_type_id_kernel(struct list_head));
    void *raw = cell->next;
    if (!raw) return 0;
    struct sock *sk = bpf_rdonly_cast(raw, bpf_core_type_id_kernel(struct sock));
    struct inet_connection_sock *icsk = bpf_rdonly_cast(raw, bpf_core_type_id_kernel(struct inet_connection_sock));
    unsigned int queued = sk->sk_ack_backlog + (unsigned int)icsk->icsk_accept_queue.qlen.counter;
    int waiting = 0;
    struct socket_wq *wq = sk->sk_wq;
    if (wq) waiting = wq->wait.head.next != &wq->wait.head;

    unsigned long long busy_for_us = PREFORKD_STEER_TIE_MAX;
    __u64 *at = bpf_map_lookup_elem(&picked_at, &slot);
    if (at && *at && *at <= s->now) busy_for_us = (s->now - *at) / 1000;

    /* Packing, the distance is from the set's start (its lowest slot) rather than the hash's pick. */
    unsigned int distance = s->live->pack ? pos : (unsigned int)k;
    unsigned long long rank = preforkd_steer_rank(queued, waiting, distance, busy_for_us);
    if (rank < s->best_rank) {
        s->best_rank = rank;
        s->best_slot = slot;
        s->best_waiting = waiting;
    }
    return 0;
}

SEC("sk_reuseport")
int steer(struct sk_reuseport_md *md)
{
    __u32 zero = 0;
    __u32 *in_use = bpf_map_lookup_elem(&live_in_use, &zero);
    __u32 which = in_use ? (*in_use & 1) : 0;
    struct live_slots *set = bpf_map_lookup_elem(&live, &which);
    struct bpf_sock *self = md->sk;
    if (!set || set->count == 0 || set->count > PREFORKD_STEER_MAX_SLOTS || !self) {
        count(to_hash);
        return SK_PASS; /* no selection: the kernel hashes over the whole group */
    }
    struct sock *sk = bpf_rdonly_cast(self, bpf_core_type_id_kernel(struct sock));
    struct sock_reuseport *reuse = sk->sk_reuseport_cb;
    if (!reuse) {
        count(to_hash);
        return SK_PASS;
    }
    struct scan s = {
        .live = set,
        .socks = (__u64)&reuse->socks[0],
        .num_socks = reuse->num_socks,
        .start = md->hash % set->count,
        .now = bpf_ktime_get_ns(),
        .best_rank = ~0ULL,
    };
    bpf_loop(PREFORKD_STEER_MAX_SLOTS, visit, &s, 0);
    if (s.best_rank == ~0ULL || bpf_sk_select_reuseport(md, &sockets, &s.best_slot, 0) != 0) {
        count(to_hash);
        return SK_PASS;
    }
    bpf_map_update_elem(&picked_at, &s.best_slot, &s.now, BPF_ANY);
    count(s.best_waiting ? to_waiting : to_busy);
    return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
