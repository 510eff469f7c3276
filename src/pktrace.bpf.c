// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Kernel side of pktrace: socket owners from task-context hooks, packets from cgroup_skb. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "pktrace.h"

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN_ 14
#define AF_PACKET_ 17
#define IPV6_HOPOPTS 0
#define IPV6_ROUTING 43
#define IPV6_FRAGMENT 44
#define IPV6_DSTOPTS 60
#define IPPROTO_ICMPV6_ 58
#define SOCK_RAW_ 3
#define UTS_NAME_LEN 65
#define EINTR 4
#define E2BIG 7
#define EAGAIN 11
#define EPIPE 32
#define ECONNABORTED 103
#define ECONNRESET 104
#define ENOTCONN 107
#define ETIMEDOUT 110
#define SHUTDOWN_MASK 3 /* sk_shutdown: RCV_SHUTDOWN | SEND_SHUTDOWN */
#define IPPROTO_MPTCP_ 262 /* socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP) */
/* --snaplen: the smaller payload rooms a record can reserve (snaplen's own is the largest). */
#define SNAP_ROOM_S 128
#define SNAP_ROOM_M 512
/* Ring-buffer space one record takes: the record (up to hdr[]'s end) and its 8-byte header. */
#define RINGBUF_SLOT (offsetof(struct pkt_wire, hdr) + PKT_HDR_MAX + 8)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space between open and load. */
const volatile __u32 self_tgid = 0;
const volatile bool scope_by_pid = false;
const volatile bool scope_by_comm = false;
const volatile bool scope_by_uid = false;
const volatile bool follow_forks = false; /* -- COMMAND: children of traced pids join the scope */
const volatile __u64 wakeup_bytes = 512 * 1024; /* an eighth of a CPU's ring buffer (user space) */
/* Owner definitions: the last id handed out, and the lowest one user space still keeps (a
 * socket whose definition is older sends a new one). The floor, read at every packet, has a
 * map of its own that is not mmapable, so kmalloc'd: see the rodata in capture.c. */
__u64 owner_seq = 0;
__u64 owner_floor SEC(".data.floor") = 0;
const volatile bool packet_events = true; /* a packet event is selected: the packet hooks emit */
const volatile bool flow_events = false;  /* a flow event is selected: conn_state emits flows */
const volatile __u32 sock_protos = PKT_SOCK_TCP; /* enum pkt_sock_class: whose packets to emit */
/* ICMP errors of the kernel's are emitted for the socket they quote: UDP sockets' owners are
 * then recorded (and their local ports published in local_socks) even if UDP is not emitted. */
const volatile bool icmp_errors = false;
/* tcpdump's habits: -i (an ifindex of the network namespace if_netns; 0: any), -Q (bits
 * 1 << enum pkt_direction), --once (a loopback packet emitted at egress is not at ingress). */
const volatile __u32 if_index = 0;
const volatile __u32 if_netns = 0;
const volatile __u8 directions = 1 << PKT_INGRESS | 1 << PKT_EGRESS;
const volatile bool once = false;
/* The key of revived's hashes (revived_mark): random, set by user space at load. */
const volatile __u32 revived_key[PKT_CONN_HASH_KEYS] = {};
/* --snaplen: bytes of each packet to keep in all, headers included (1 to PKT_SNAP_MAX); 0 off. */
const volatile __u32 snaplen = 0;
/* The fast rings' slot area, a power of two, less one (pktrace.h; user space); 0: none. */
const volatile __u64 fast_mask = 0;

/* What pktrace keeps per socket: its owner, and what tells whether the task using it now is
 * still that owner; which owner definition its packet records name (pktrace.h). */
enum kept_in { PKT_KEPT_NONE, PKT_KEPT_GONE, PKT_KEPT_CLOSED };

/* Three fields of sk_state in one word, for close_missed's compare-and-swap (this clang has
 * 64-bit atomics only). */
union sk_seen {
	struct {
		__u32 sent_ifindex; /* the interface that sk_state's sent_id definition names */
		/* the last state change handled: old << 8 | new (conn_state_nested) */
		__u16 state_seen;
		/* local port, kept for the close, by which time the kernel cleared it */
		__u16 lport;
	};
	__u64 word;
};

struct sk_state {
	/* What every packet reads (owner_is, the scope, the hold) comes first: with the storage's
	 * own header (its map pointer) these 56 bytes share one cache line. */
	__u64 exec_id; /* the owner's self_exec_id: an exec changes it */
	__u64 cred;    /* the owner's cred pointer: setuid and friends replace it */
	/* Set on a listener, so every connection cloned from it starts as not yet taken: its
	 * owner is the listener's until a task takes it (state_take clears it). */
	__u8 listener;
	__u8 published;    /* UDP, ping: the owner is in local_socks under the local port; TCP:
			    * under the connection (from its connect's SYN or ESTABLISHED) */
	__u8 acceptor;     /* a listener's clone: the acceptor has named itself (getpeername) */
	__u8 closed_first; /* enum pkt_flow_closer, for the flow's end */
	__u8 flow_passive; /* the peer initiated the connection */
	__u8 flow_opened;  /* flow_passive is known: the socket's ESTABLISHED was seen */
	__u8 kept;         /* enum kept_in: where conn_remember put this owner, if it did */
	__u8 pad1;
	struct pkt_owner owner; /* pid, tid, ppid, uid, traced: the first 20 of its bytes */
	__u64 sent_id;      /* the owner definition sent for this owner; 0: none (owner changed) */
	union sk_seen seen;
	__u64 flow_begin_ns; /* when it reached ESTABLISHED; 0: before pktrace (or not traced) */
};
_Static_assert(__builtin_offsetof(struct sk_state, owner.traced) < 56, "hot fields in one line");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sk_state);
} sk_owner SEC(".maps");

/* Last owner of each connection its process closed first (FIN_WAIT1, FIN_WAIT2, CLOSING, then
 * a timewait socket), for the packets that still pass through its timewait socket or draw a
 * kernel reply; keyed by struct pkt_conn. Sized by user space from the kernel's timewait and
 * orphan limits, so no live timewait connection is pushed out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct pkt_conn);
	__type(value, struct pkt_owner);
} gone_conns SEC(".maps");

/* Last owner of each connection closed without a timewait socket (the passive closer's
 * LAST_ACK, a reset, an abort): packets still reaching it meet no socket, and the kernel
 * answers them with RSTs. A table of its own: these closes, as many as the host makes, push
 * out only each other, never a timewait connection. Consulted only when gone_conns has
 * nothing. Sized by user space from the kernel's orphan limit. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct pkt_conn);
	__type(value, struct pkt_owner);
} closed_conns SEC(".maps");

/* Which connections gone_conns and closed_conns may hold (pktrace.h): written here at every
 * insert into the current generation, rotated by user space. A word's two generations side by
 * side: the check at every received packet reads one cache line. */
__u64 conn_filter[PKT_CONN_FILTER_WORDS][2];
__u32 conn_filter_gen;
/* Per generation, which regions of its words have a bit set (pktrace.h): a region's bit set
 * after the region's first bit, all cleared by user space with the words. With none in
 * either, the check at every received packet makes no hash and reads no line of the filter
 * (nothing in scope has closed: 50-60 ns of the device program's 150). */
__u32 conn_filter_top[2] __attribute__((aligned(8)));
/* Bumped after every change to an owned socket's owner record (a task takes it from another,
 * a state change or the iterator's owner rewrites it, it becomes a listener), at every TCP
 * socket's CLOSE and every other owned socket's creation (a dead socket's address may be
 * reused by the next one): the CPUs' seen slots noted before it stand for nothing. A claim of
 * a listener's clone leaves it (a clone is never in a slot before it is claimed). */
#ifdef PKTRACE_FAULT_MISS_CLOSES
const volatile bool fault_fin = false; /* the test build: see conn_state_do */
#endif
__u32 owner_gen SEC(".data.gen") = 0; /* not mmapable (capture.c), as owner_floor */
#define OWNER_SEEN_SLOTS 64

/* What a CPU's receive path notes for the socket hooks that follow on that CPU (receive runs
 * from the device to the socket on one CPU). An element per CPU of a plain array, as the
 * counters are (see stats). */
struct cpu_note {
	/* The last packet the CPU emitted at the device on its way in: if a socket hook then
	 * sees it after all (a connection caught between its full and its timewait socket), it
	 * is not emitted twice. */
	__u64 dev_emitted;
	/* --once: the data buffer of the packet the CPU is receiving, if it was emitted at
	 * egress: the socket hooks that run next for it (and its clones) skip it. */
	__u64 once_arriving;
	/* and its sk_buff: the receive path may copy the data of a packet with IP options
	 * before the socket hooks see it (the same sk_buff, another buffer). */
	__u64 once_arriving_skb;
	/* The owner definitions this CPU sent last, for records without a socket state of their
	 * own (a new socket's first packet, packets seen at the device) to name again: most are
	 * the same few processes. def_seq is odd while a slot is written (see def_cached). */
	__u32 def_seq;
	__u32 def_next;
	struct def_slot {
		__u64 id;
		__u32 ifindex;
		__u32 pad;
		/* The name too: an ifindex is only unique within a namespace, and one owner can
		 * have sockets in several. */
		__u64 ifname[PKT_IFNAME_LEN / 8];
		struct pkt_owner owner;
	} defs[4];
	__u64 sk_addr; /* owner_use's socket, as a number */
	/* Sockets this CPU saw used by the task that owns them (owner_use), by address: a send
	 * or receive by that task again reads neither the socket nor its storage, whose lines
	 * are cold on this CPU when no packet hook read them here first (the receiving side of
	 * loopback, and every call with -e flows alone): 60-70 ns a call above an empty program. */
	struct seen_slot {
		__u64 sk;      /* the socket's address (0: unused) */
		__u64 exec_id; /* the owner's self_exec_id and cred, as st had them */
		__u64 cred;
		__u32 tid;
		__u32 gen; /* owner_gen when noted: any change of an owned socket's owner since
			    * makes every slot stale */
	} seen[OWNER_SEEN_SLOTS];
} __attribute__((aligned(64)));

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* the possible CPUs (user space) */
	__type(key, __u32);
	__type(value, struct cpu_note);
} cpu_notes SEC(".maps");

/* --once: loopback packets emitted at egress, by data buffer (clones share it: a ping or raw
 * socket receives one), until they arrive: a direct-mapped table, a slot per buffer address,
 * written with plain stores (an LRU hash's update, which takes the map's lock and a free-list
 * entry, cost 96-147 ns more per sent packet here). A slot holds the address XOR the packet's
 * L3 length shifted into the top 16 bits, which a kernel buffer's address (the direct map)
 * does not vary in: it matches only the same buffer with the same length, which guards
 * against a buffer reused by a packet whose first one was dropped on the way, as does the
 * next packet sent in its slot. Two packets in flight in one slot are shown twice (the
 * overwritten one, or either under a race), never dropped. */
#define ONCE_SLOTS 2048 /* 16 KiB and the array's header: kmalloc'd (under 32 KiB) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ONCE_SLOTS);
	__type(key, __u32);
	__type(value, __u64); /* 0: free */
} once_sent SEC(".maps");

/* Connections a new SYN made live again after they were remembered (gone_conns, closed_conns),
 * by hash: their bits in the filter stay (other connections may share them), and without this
 * every packet of theirs would look both tables up for nothing: ports reused while the old
 * connection's timewait lasts, as a web server's clients do all the time. A direct-mapped
 * array indexed by the filter's hash, a slot holding the connection's hash under a secret key
 * (revived_mark; 0: free), written with plain stores: a slot another revived connection takes
 * only costs its lookups again. Cleared when the connection is remembered again
 * (conn_remember). */
#define REVIVED_SLOTS 2048 /* 16 KiB: kmalloc'd, as once_sent */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, REVIVED_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} revived SEC(".maps");

/* Listening sockets by local address and port (no remote side): the owner of a SYN-ACK the
 * kernel sends without a socket (SYN cookies under a flood). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pkt_conn);
	__type(value, struct pkt_owner);
} listeners SEC(".maps");

/* Whose packet an ICMP error quotes: owners of UDP and ping sockets by local port (netns,
 * family, protocol in pad, lport; the rest 0), written once per socket and owner at its first
 * send; and of established TCP connections by their addresses (protocol TCP in pad). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pkt_conn);
	__type(value, struct pkt_owner);
} local_socks SEC(".maps");

/* Sockets that existed before pktrace started, keyed by socket inode: the first task holding
 * one owns it. Taken lazily by the socket's next packet or state
 * change (owner_existing_take, existing_take_sk), since this kernel does not let an
 * iterator reach a socket's storage (sock->sk is an untrusted pointer here). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, __u64);
	__type(value, struct pkt_owner);
} existing_owner SEC(".maps");

/* Sized by user space to the host's pid_max: a followed command can never fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} scope_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[PKT_COMM_LEN]);
	__type(value, __u8);
} scope_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} scope_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, char[UTS_NAME_LEN]);
} uts_names SEC(".maps");

/* One ring buffer per CPU, each written only by the programs running there: records of two
 * CPUs never contend for one lock, one producer position, or each other's cache lines (a
 * shared ring cost ~250 ns per record here, measured). User space creates them (sized from
 * -B) and reads them merged in timestamp order. */
struct ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1); /* the possible CPUs (user space) */
	__type(key, __u32);
	__array(values, struct ring);
} rings SEC(".maps");

/* The fast rings (pktrace.h): one element per CPU, PKT_FAST_CTL bytes of struct pkt_fast_ctl
 * then the slots; user space sets the size and maps them. No BTF type: the size is set at
 * load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PKT_FAST_CTL + 4096);
} fast_rings SEC(".maps");

/* The counters, one element per CPU (user space sets max_entries to the possible CPUs): a
 * plain array is kmalloc'd, in the kernel's direct map, where a per-CPU array's memory is
 * vmalloc'd. Each run of the egress hook follows a syscall entry, and this kernel (PTI, no
 * PCID) enters with a cold TLB: a per-CPU counter cost ~95 ns per egress run, this ~20
 * (measured). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pkt_cpu_stats);
} stats SEC(".maps");

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* This CPU's counter idx (NULL only if user space did not size the map). */
static __always_inline __u64 *stat_at(__u32 idx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct pkt_cpu_stats *s = bpf_map_lookup_elem(&stats, &cpu);

	return s && idx < STAT__MAX ? &s->v[idx] : NULL;
}

/* A plain add (a load and a store): a program that a softirq interrupts on the same CPU
 * between the two overwrites what the softirq's programs added there. The packet counters
 * (seen, written, out of scope) take that, rarely, as an undercount; a locked add in every
 * hook run would cost more than it is worth there. */
static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = stat_at(idx);

	if (v)
		*v += 1;
}

/* An atomic add, for the counters of what was lost or not recorded and of records that are
 * not packets (flows, claims; user space checks what it wrote against them): never
 * undercounted. */
static __always_inline void stat_inc_exact(__u32 idx)
{
	__u64 *v = stat_at(idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline struct cpu_note *cpu_note(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&cpu_notes, &cpu);
}

/* This CPU's ring buffer (NULL only if user space did not create it). */
static __always_inline void *ring_here(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&rings, &cpu);
}

/* Submit a record of about size bytes to this CPU's ring buffer, waking the reader each time
 * the backlog grows by another wakeup_bytes, not per record: a wakeup is an IRQ (on this VM a
 * self-IPI, a trapped MSR write of ~2 us). The window of two records tolerates another CPU
 * reserving in between. The reader polls every few ms besides. */
static __always_inline void ring_submit(void *ring, void *rec, __u64 size)
{
	__u64 avail = ring ? bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) : 0;

	if (avail >= wakeup_bytes && avail % wakeup_bytes < 2 * size)
		bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	else
		bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
}

/* Whether a and b are the same owner, padding included (owners are built zeroed). */
static __always_inline bool owner_same(const struct pkt_owner *a, const struct pkt_owner *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	__u64 diff = 0;
	__u32 i;

	for (i = 0; i < sizeof(*a) / 8; i++)
		diff |= x[i] ^ y[i];
	return !diff;
}

/* Whether -s narrowed what is traced (else only pktrace's own sockets are out of scope). */
static __always_inline bool scope_set(void)
{
	return scope_by_pid || scope_by_comm || scope_by_uid;
}

/* Both generations' region marks, in one load: two loads could see the new generation's
 * marks before user space set them and the old one's after user space cleared them. 0: neither
 * gone_conns nor closed_conns holds any connection. */
static __always_inline __u64 conn_filter_regions(void)
{
	return *(volatile __u64 *)conn_filter_top;
}

static __always_inline bool conn_filter_any(void)
{
	return conn_filter_regions();
}

#define MAY_GONE 1   /* conn_maybe_remembered: gone_conns may hold the connection */
#define MAY_CLOSED 2 /* closed_conns may */

/* A connection's slot in revived (h: its pkt_conn_hash; bits the filter's do not use). */
static __always_inline __u64 *revived_slot(__u64 h)
{
	__u32 i = (__u32)(h >> 20) & (REVIVED_SLOTS - 1);

	return bpf_map_lookup_elem(&revived, &i);
}

/* What revived holds for c: its hash under the secret key (odd: 0 is a free slot). The
 * filter's hash has a public key and is affine in the ports and addresses, so a peer could
 * pick addresses whose hash equals a remembered connection's, and with its SYN mark that
 * connection as live. */
static __always_inline __u64 revived_mark(const struct pkt_conn *c)
{
	return pkt_conn_hash_keyed(c, (const __u32 *)revived_key) | 1;
}

/* Which of gone_conns and closed_conns may hold c (MAY_GONE, MAY_CLOSED): 0 means neither.
 * *hp: c's hash, for conn_forget_in. */
static __always_inline __u32 conn_maybe_remembered(const struct pkt_conn *c, __u64 *hp)
{
	__u32 bit, w, m, r;
	__u64 h, *slot, top;

	*hp = 0;
	top = conn_filter_regions();
	if (!top)
		return 0;
	h = pkt_conn_hash(c);
	*hp = h;
	bit = (__u32)(h >> (64 - PKT_CONN_FILTER_BITS)) & ~1u;
	w = (bit >> 6) & (PKT_CONN_FILTER_WORDS - 1);
	r = pkt_conn_filter_region(w);
	if (!(((top >> r) | (top >> (32 + r))) & 1))
		return 0;
	m = ((conn_filter[w][0] | conn_filter[w][1]) >> (bit & 63)) & (MAY_GONE | MAY_CLOSED);
	if (!m)
		return 0;
	/* Forgotten since it was last remembered (its bits stay, shared with others'). */
	slot = revived_slot(h);
	return slot && *slot && *slot == revived_mark(c) ? 0 : m;
}

/* Forget c (hash h) in the tables that may hold it (m, from conn_maybe_remembered), and note
 * it as revived, so that its next packets skip the tables its stale bits point to. The note
 * goes first: a close remembering c on another CPU meanwhile (its update, then its clear of
 * the slot) either comes before the deletes, and is undone by them as before, or clears the
 * note after it was written. */
static __always_inline void conn_forget_in(const struct pkt_conn *c, __u32 m, __u64 h)
{
	__u64 *slot;

	if (!m)
		return;
	slot = revived_slot(h);
	if (slot)
		*slot = revived_mark(c);
	if (m & MAY_GONE)
		bpf_map_delete_elem(&gone_conns, c);
	if (m & MAY_CLOSED)
		bpf_map_delete_elem(&closed_conns, c);
}

/* A new connection on c's addresses (its SYN): what was remembered of an old one is history.
 * Most connections never had an entry, and a delete takes the table's bucket lock: the
 * filter is asked first. */
static __always_inline void conn_forget(const struct pkt_conn *c)
{
	__u64 h;
	__u32 m = conn_maybe_remembered(c, &h);

	conn_forget_in(c, m, h);
}

/* Remember c's last owner (st's) in gone_conns or closed_conns (which: PKT_KEPT_GONE or
 * PKT_KEPT_CLOSED), and c in the filter; the bit goes in after the entry, so user space
 * refilling a new generation finds the entry if the bit went into the old one. A close passes
 * here up to three times (FIN_WAIT1, FIN_WAIT2, CLOSE): once the entry is in, the socket's
 * state says so and the later ones cost nothing (an LRU update takes a new element and frees
 * the old one under the table's locks). Under a scope, an owner out of scope is not remembered
 * (its teardown would not be written: the update and the device path's lookups are saved),
 * unless it is a listener's provisional one, whose connection a traced process may still take;
 * without one, only pktrace's own sockets are out of scope, and they are remembered as before
 * (their late packets counted out of scope, not written as without an owner). */
static __always_inline long conn_remember(void *map, const struct pkt_conn *c, struct sk_state *st,
					  __u8 which)
{
	__u64 h = pkt_conn_hash(c), *slot;
	__u32 bit = (__u32)(h >> (64 - PKT_CONN_FILTER_BITS)), gen = conn_filter_gen & 1, w, region;
	long err;

	if (st->kept == which)
		return 0;
	if (!st->owner.traced && !st->listener && scope_set()) {
		/* Nor may an earlier owner's entry (a traced process that closed, then handed the
		 * socket on) stand for this one. */
		conn_forget(c);
		return 0;
	}
	err = bpf_map_update_elem(map, c, &st->owner, BPF_ANY);
	if (!err)
		st->kept = which;
	bit = (bit & ~1u) | (which == PKT_KEPT_CLOSED); /* pkt_conn_filter_bit_in */
	w = (bit >> 6) & (PKT_CONN_FILTER_WORDS - 1);
	__sync_fetch_and_or(&conn_filter[w][gen], 1ULL << (bit & 63));
	/* After the bit (the locked or orders them), and written only once a region: every
	 * received packet reads this line. */
	region = 1u << pkt_conn_filter_region(w);
	if (!(conn_filter_top[gen] & region))
		__sync_fetch_and_or((__u64 *)conn_filter_top,
				    (__u64)region << pkt_conn_filter_half(gen));
	/* Remembered again: no longer revived. A close remembers before its socket leaves (the
	 * state change's tracepoint comes first), so a packet only the device sees finds the
	 * slot still set only where the entry was not in yet either (a connection first
	 * remembered at its CLOSE, after its timewait socket came: shutdown() without close()). */
	slot = revived_slot(h);
	if (slot && *slot && *slot == revived_mark(c))
		*slot = 0;
	return err;
}

/* Whether a -s comm= value names o's thread or its process, task's thread-group leader (dig
 * sends from a thread named isc-net-0000, and -s comm=dig means dig's packets). */
static __always_inline bool comm_in_scope(const struct pkt_owner *o, struct task_struct *task)
{
	char leader[PKT_COMM_LEN] = {};

	if (bpf_map_lookup_elem(&scope_comms, o->comm))
		return true;
	if (bpf_probe_read_kernel_str(leader, sizeof(leader), task->group_leader->comm) < 0)
		return false;
	return bpf_map_lookup_elem(&scope_comms, leader);
}

/* Whether o, the owner task made, is in the scope. */
static __always_inline bool owner_in_scope(const struct pkt_owner *o, struct task_struct *task)
{
	if (o->pid == self_tgid)
		return false;
	if (scope_by_pid && !bpf_map_lookup_elem(&scope_pids, &o->pid))
		return false;
	if (scope_by_comm && !comm_in_scope(o, task))
		return false;
	if (scope_by_uid && !bpf_map_lookup_elem(&scope_uids, &o->uid))
		return false;
	return true;
}

#define FNV64_BASIS 0xcbf29ce484222325ULL
#define FNV64_PRIME 0x100000001b3ULL

/* The key of a task's host name: its UTS namespace's id (never reused while the system runs)
 * hashed with the node name itself, so a sethostname makes a new key. FNV-1a, 64 bits. The
 * name is read in place (loads from the task's BTF pointer, no helper call): only a key not
 * yet in uts_names copies it, and is made again from that copy. */
static __always_inline __u64 uts_name_remember(struct task_struct *task)
{
	struct uts_namespace *uts = task->nsproxy->uts_ns;
	const char *node = uts->name.nodename;
	char name[UTS_NAME_LEN] = {};
	__u64 h, id = 0;
	int i;

	if (bpf_core_field_exists(uts->ns.ns_id))
		id = uts->ns.ns_id;
	if (!id)
		id = uts->ns.inum;
	id = (FNV64_BASIS ^ id) * FNV64_PRIME;
	h = id;
	for (i = 0; i < UTS_NAME_LEN - 1; i++) {
		char ch = node[i];

		if (!ch)
			break;
		h = (h ^ (__u8)ch) * FNV64_PRIME;
	}
	if (bpf_map_lookup_elem(&uts_names, h ? &h : &(__u64){1}))
		return h ? h : 1;
	if (bpf_probe_read_kernel_str(name, sizeof(name), node) < 0)
		return 0;
	h = id;
	for (i = 0; i < UTS_NAME_LEN - 1 && name[i]; i++)
		h = (h ^ (__u8)name[i]) * FNV64_PRIME;
	if (!h)
		h = 1;
	bpf_map_update_elem(&uts_names, &h, name, BPF_ANY);
	return h;
}

/* Fill an owner record from the task running now (task-context hooks only). */
static __always_inline void owner_from_current(struct pkt_owner *o)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();

	o->pid = id >> 32;
	o->tid = (__u32)id;
	o->ppid = task->real_parent->tgid;
	o->uid = (__u32)bpf_get_current_uid_gid();
	o->cgroup_id = bpf_get_current_cgroup_id();
	o->uts_key = uts_name_remember(task);
	bpf_get_current_comm(o->comm, sizeof(o->comm));
	o->traced = owner_in_scope(o, task);
}

/* After a change to an owned socket's owner record: the CPUs' seen slots are stale. */
static __always_inline void owner_gen_bump(void)
{
	__sync_fetch_and_add(&owner_gen, 1);
}

/* The current task takes the socket: its identity, and what tells when it stops being it. */
static __always_inline void state_take(struct sk_state *st)
{
	struct task_struct *task = bpf_get_current_task_btf();

	owner_from_current(&st->owner);
	st->sent_id = 0;
	st->exec_id = task->self_exec_id;
	st->cred = (__u64)task->cred;
	st->listener = 0;
	st->acceptor = 0;
	st->published = 0;
	st->kept = PKT_KEPT_NONE;
}

/* A socket's class (enum pkt_sock_class), or 0 for one pktrace never traces. */
static __always_inline __u32 sock_class(__u32 type, __u32 protocol)
{
	/* By protocol first: the kernel's own TCP and ICMP sockets (resets, errors, echo replies)
	 * are raw sockets of those protocols. */
	switch (protocol) {
	case IPPROTO_TCP:
	case IPPROTO_MPTCP_:
		return PKT_SOCK_TCP;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		return PKT_SOCK_UDP;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6_:
		return PKT_SOCK_ICMP;
	}
	return type == SOCK_RAW_ ? PKT_SOCK_RAW : 0;
}

/* The classes whose owners are recorded: TCP always (flows, claims), the emitted ones, and UDP
 * for the ICMP errors that quote it. */
static __always_inline bool sock_class_owned(__u32 cls)
{
	return cls & (sock_protos | PKT_SOCK_TCP | (icmp_errors ? PKT_SOCK_UDP : 0));
}

SEC("cgroup/sock_create")
int owner_sock_create(struct bpf_sock *sk)
{
	struct sk_state *st;

	/* An MPTCP socket's owner also owns its subflows, which the kernel creates itself. */
	if (!sock_class_owned(sock_class(sk->type, sk->protocol)) ||
	    (sk->family != AF_INET && sk->family != AF_INET6))
		return 1;
	st = bpf_sk_storage_get(&sk_owner, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st)
		state_take(st);
	/* A dead socket's address may be this one's: a TCP socket's death bumped it already
	 * (conn_state_do), but UDP, ping and raw sockets die without a hook. */
	if (sock_class(sk->type, sk->protocol) != PKT_SOCK_TCP)
		owner_gen_bump();
	return 1;
}

/* The connection of a socket as it sees itself; IPv4-mapped IPv6 sockets as IPv4. sk is a BTF
 * pointer (tracing programs, a cgroup hook's kernel context): plain loads, no helper calls. */
static __always_inline void conn_of_sock(const struct sock *sk, struct pkt_conn *c)
{
	__u16 family = sk->__sk_common.skc_family;

	__builtin_memset(c, 0, sizeof(*c));
	c->netns = sk->__sk_common.skc_net.net->ns.inum;
	c->lport = sk->__sk_common.skc_num;
	c->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (family == AF_INET6) {
		const __u32 *d = sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32;

		/* ::ffff:a.b.c.d carries IPv4 packets */
		if (!(d[0] | d[1]) && d[2] == bpf_htonl(0xffff)) {
			family = AF_INET;
		} else {
			const __u32 *l = sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32;
			__u32 *cl = (__u32 *)c->laddr, *cr = (__u32 *)c->raddr;

			c->family = 6;
			for (int i = 0; i < 4; i++) {
				cl[i] = l[i];
				cr[i] = d[i];
			}
			return;
		}
	}
	c->family = 4;
	*(__u32 *)c->laddr = sk->__sk_common.skc_rcv_saddr;
	*(__u32 *)c->raddr = sk->__sk_common.skc_daddr;
}

/* Tell user space who took a passive connection, so it can release the held packets. c: its
 * connection when the socket no longer says it whole (at TCP_CLOSE its local port is 0); NULL:
 * the socket's. */
static __always_inline void claim_emit(const struct sock *sk, const struct pkt_owner *o,
				       __u8 how, const struct pkt_conn *c)
{
	void *ring = ring_here();
	struct pkt_record *rec;

	rec = ring ? bpf_ringbuf_reserve(ring, offsetof(struct pkt_record, hdr) +
							  sizeof(struct pkt_conn), 0) : NULL;
	if (!rec) {
		stat_inc_exact(STAT_CLAIMS_LOST);
		return;
	}
	rec->ts_ns = bpf_ktime_get_boot_ns();
	rec->owner = *o;
	rec->pkt_len = 0;
	rec->ifindex = 0;
	rec->direction = 0;
	rec->l3_proto = 0;
	rec->hdr_len = sizeof(struct pkt_conn);
	rec->kind = PKT_REC_CLAIM;
	rec->flags = how;
	rec->ext_len = 0;
	rec->ext_count = 0;
	rec->sk_proto = IPPROTO_TCP;
	rec->l4_proto = IPPROTO_TCP;
	rec->pad2 = 0;
	rec->ifname[0] = 0;
	if (c)
		__builtin_memcpy(rec->hdr, c, sizeof(*c));
	else
		conn_of_sock(sk, (struct pkt_conn *)rec->hdr);
	rec->netns = ((struct pkt_conn *)rec->hdr)->netns;
	stat_inc_exact(STAT_CLAIMS);
	/* Batched wakeups: the reader polls every few ms (20 while records come). */
	ring_submit(ring, rec, offsetof(struct pkt_record, hdr) + sizeof(struct pkt_conn));
}

/* accept() with an address buffer asks the new socket for its peer's name, in the acceptor's
 * context: the acceptor is the connection's owner until someone uses it. A cgroup hook and not
 * the accept syscall tracepoints, which would slow every system call of the host while
 * pktrace runs. An explicit getpeername() before the first use is as good a claim. */
static __always_inline int owner_peername(struct bpf_sock_addr *ctx)
{
	struct bpf_sock_addr_kern *k = bpf_cast_to_kern_ctx(ctx);
	struct sock *sk = k->sk;
	struct pkt_owner o = {};
	struct sk_state *st;

	if (sk->sk_protocol != IPPROTO_TCP && sk->sk_protocol != IPPROTO_MPTCP_)
		return 1;
	/* Only a connection nobody has used yet (its record is the listener's clone), and only
	 * accept's own call: a later getpeername() (another task given the fd, a monitor) names
	 * no one. */
	st = ctx->sk ? bpf_sk_storage_get(&sk_owner, ctx->sk, 0, 0) : NULL;
	if (st && (!st->listener || st->acceptor))
		return 1;
	owner_from_current(&o);
	/* Still unclaimed (the first use claims it), but the packets that follow a close without
	 * any use (FIN, timewait) now carry the acceptor, not the listener's owner: a definition
	 * of their own, not the listener's the clone still names. */
	if (st) {
		struct task_struct *task = bpf_get_current_task_btf();

		st->owner = o;
		st->acceptor = 1;
		st->sent_id = 0;
		st->kept = PKT_KEPT_NONE;
		/* What owner_is compares: the acceptor's own first use keeps this record. */
		st->exec_id = task->self_exec_id;
		st->cred = (__u64)task->cred;
	}
	claim_emit(sk, &o, PKT_CLAIM_ACCEPT, NULL);
	return 1;
}

SEC("cgroup/getpeername4")
int owner_peername4(struct bpf_sock_addr *ctx)
{
	return owner_peername(ctx);
}

SEC("cgroup/getpeername6")
int owner_peername6(struct bpf_sock_addr *ctx)
{
	return owner_peername(ctx);
}

/* A TCP connection's owner by its addresses in local_socks (protocol TCP in pad), from its
 * connect's first SYN or ESTABLISHED until it closes: whose segment an ICMP error quotes. */
static __always_inline void tcp_conn_publish(const struct sock *sk, struct sk_state *st,
					     bool up)
{
	struct pkt_conn c;

	conn_of_sock(sk, &c);
	if (!c.lport)
		c.lport = st->seen.lport;
	c.pad = IPPROTO_TCP;
	if (up)
		bpf_map_update_elem(&local_socks, &c, &st->owner, BPF_ANY);
	else
		bpf_map_delete_elem(&local_socks, &c);
	/* Published: the packet hook's SYN check is skipped from here on. */
	st->published = up;
}

/* Whether task is the owner st keeps: the same thread, exec and credentials. */
static __always_inline bool owner_is(const struct sk_state *st, const struct task_struct *task)
{
	return st->owner.tid == (__u32)task->pid && st->exec_id == task->self_exec_id &&
	       st->cred == (__u64)task->cred;
}

/* Whether the current task is the acceptor st names, as accept recorded it: the same owner,
 * name, parent and cgroup (a thread may rename itself, or move, between the accept and its
 * first use; its host name is not compared: a sethostname in between keeps the old one). */
static __always_inline bool acceptor_again(const struct sk_state *st)
{
	struct task_struct *task = bpf_get_current_task_btf();
	const __u64 *comm = (const __u64 *)task->comm, *had = (const __u64 *)st->owner.comm;

	return owner_is(st, task) && comm[0] == had[0] && comm[1] == had[1] &&
	       (__u32)task->real_parent->tgid == st->owner.ppid &&
	       bpf_get_current_cgroup_id() == st->owner.cgroup_id;
}

/* The current task takes sk from its owner on record (st); unclaimed: st is still the record
 * cloned from the listener, and this is the connection's first use. */
static __always_inline void owner_take(struct sock *sk, struct sk_state *st, bool unclaimed)
{
	if (st->owner.pid && !unclaimed)
		stat_inc(STAT_OWNER_CHANGED);
	if (unclaimed && st->acceptor && acceptor_again(st)) {
		/* The acceptor's own first use: accept made this owner record already (nginx's
		 * first receive on a connection: about 200 ns of helper calls and lookups). */
		st->listener = 0;
		st->acceptor = 0;
		st->published = 0;
	} else {
		state_take(st);
	}
	if (!unclaimed)
		owner_gen_bump();
	if (icmp_errors && sk->sk_protocol == IPPROTO_TCP &&
	    sk->__sk_common.skc_state == TCP_ESTABLISHED)
		tcp_conn_publish(sk, st, true);
	if (unclaimed)
		claim_emit(sk, &st->owner, PKT_CLAIM_USE, NULL);
}

/* A task sends or receives on a socket: if it is not the owner on record, it becomes it. The
 * common case, the same task again, costs one storage lookup and a few compares. (A send's
 * own packets have made the sender the owner already: egress_take.) */
static __always_inline int owner_use(struct sock *sk)
{
	struct task_struct *task;
	struct seen_slot *slot = NULL;
	struct cpu_note *note;
	struct sk_state *st;
	bool unclaimed;
	__u64 addr = 0;
	__u32 gen, cls;

	task = bpf_get_current_task_btf();
	/* Read before the record is: a change after this read makes the slot noted below stale. */
	gen = *(volatile __u32 *)&owner_gen;
	/* By the socket's address alone: the first load from the socket costs 30 ns here, its
	 * storage's lookup 35 more (measured). */
	note = cpu_note();
	if (note) {
		__u32 i;

		/* The verifier allows no arithmetic on a socket's pointer: through memory it is a
		 * number. (Tracepoints run programs with preemption off, and these two run only
		 * in task context: nothing else on this CPU writes the note meanwhile.) */
		*(volatile __u64 *)&note->sk_addr = (__u64)sk;
		addr = *(volatile __u64 *)&note->sk_addr;
		i = (__u32)((addr >> 6) * 0x9e3779b97f4a7c15ULL >> 58) & (OWNER_SEEN_SLOTS - 1);
		slot = &note->seen[i];
		if (slot->sk == addr && slot->tid == (__u32)task->pid && slot->gen == gen &&
		    slot->exec_id == task->self_exec_id && slot->cred == (__u64)task->cred)
			return 0;
	}
	cls = sock_class(sk->sk_type, sk->sk_protocol);
	if (!sock_class_owned(cls))
		return 0;
	st = bpf_sk_storage_get(&sk_owner, sk, 0, 0);
	if (st && owner_is(st, task) && !st->listener) {
		/* The owner again: noted for the next call on this CPU. Not a TCP socket in
		 * CLOSE: one that never left it dies without a state change to bump owner_gen,
		 * and a connection accepted later may reuse its address. */
		if (slot && (cls != PKT_SOCK_TCP || sk->__sk_common.skc_state != TCP_CLOSE)) {
			slot->sk = addr;
			slot->exec_id = st->exec_id;
			slot->cred = st->cred;
			slot->tid = st->owner.tid;
			slot->gen = gen;
		}
		return 0;
	}
	if (sk->__sk_common.skc_family != AF_INET && sk->__sk_common.skc_family != AF_INET6)
		return 0;
	/* A record cloned from the listener: this is the connection's first use. */
	unclaimed = st && st->listener;
	if (!st)
		st = bpf_sk_storage_get(&sk_owner, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st)
		return 0;
	owner_take(sk, st, unclaimed);
	return 0;
}

/* Give a socket without pktrace's state an owner that no task context wrote (nothing tells
 * when the task using it stops being that owner). sk: a socket pointer of the program's kind. */
static __always_inline struct sk_state *state_put(void *sk, const struct pkt_owner *o,
						  bool listener)
{
	struct sk_state *st = bpf_sk_storage_get(&sk_owner, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!st)
		return NULL;
	st->owner = *o;
	st->sent_id = 0;
	st->exec_id = 0;
	st->cred = 0;
	st->listener = listener;
	st->acceptor = 0;
	st->published = 0;
	st->kept = PKT_KEPT_NONE;
	owner_gen_bump();
	return st;
}

/* A socket older than pktrace, by its inode (0: none): the owner the iterator recorded moves
 * into its storage. */
static __always_inline struct sk_state *existing_move(void *sk, __u64 ino, bool listener)
{
	struct pkt_owner *found;
	struct sk_state *st;

	if (!ino)
		return NULL;
	found = bpf_map_lookup_elem(&existing_owner, &ino);
	if (!found)
		return NULL;
	st = state_put(sk, found, listener);
	if (!st)
		return NULL;
	bpf_map_delete_elem(&existing_owner, &ino);
	stat_inc(STAT_EXISTING_MOVED);
	return st;
}

/* The same from a state change: a socket older than pktrace whose packets (if any are traced)
 * have not taken it yet. With flow events alone no packet program runs, so this is where an
 * old connection gets its owner, while its process still holds it (FIN_WAIT1 in close(),
 * CLOSE_WAIT, a reset, an abort or a timeout all come before the file lets go of it). */
static __always_inline struct sk_state *existing_take_sk(const struct sock *sk)
{
	struct socket *sock = sk->sk_socket;
	struct sk_state *st;
	struct file *file;

	if (!sock)
		return NULL;
	file = sock->file;
	if (!file)
		return NULL;
	st = existing_move((struct sock *)sk, file->f_inode->i_ino,
			   sk->__sk_common.skc_state == TCP_LISTEN);
	if (st)
		st->seen.lport = sk->__sk_common.skc_num; /* for the close, as a LISTEN would have */
	return st;
}

static __always_inline struct pkt_owner *listener_of(const struct pkt_conn *c);

/* A connection accepted from a listener older than pktrace that no packet program gave
 * pktrace's state (-e flows alone): at its ESTABLISHED it has no record to inherit, so it gets
 * the listener's owner from the listeners table (filled for such listeners at start-up), held
 * as a cloned record would be until a task takes it. */
static __always_inline struct sk_state *listener_take_sk(const struct sock *sk)
{
	struct pkt_owner *o;
	struct pkt_conn c;

	conn_of_sock(sk, &c);
	o = listener_of(&c);
	return o ? state_put((struct sock *)sk, o, true) : NULL;
}

/* Why a connection reached TCP_CLOSE from oldstate. The kernel sets sk_err before it closes a
 * socket on a reset it received (ECONNRESET, or EPIPE in CLOSE_WAIT), an abort (ECONNABORTED:
 * SOCK_DESTROY, tcp_abort) or a timeout (tcp_write_err: ETIMEDOUT, or the soft error an ICMP
 * message left, with retransmits or probes still outstanding). With no error:
 * - LAST_ACK, CLOSING, TIME_WAIT: the FIN handshake's end;
 * - FIN_WAIT2: the peer's FIN came (SOCK_DONE: the timewait socket takes over), or the
 *   process closed it and a timewait socket waits for that FIN; but a close() with SO_LINGER 0
 *   (tcp_disconnect) resets it before the peer's FIN came (close() itself sets RCV_SHUTDOWN,
 *   so only SOCK_DONE, set by the FIN, tells);
 * - any other state (ESTABLISHED, CLOSE_WAIT, FIN_WAIT1 before its FIN was acked): a reset went
 *   out, from tcp_disconnect (connect AF_UNSPEC, SO_LINGER 0), a close() with unread data, or
 *   an orphan out of resources.
 * late: the close is handled after the fact (close_missed), with err the error its process was
 * given, or sk_err, which the process may have cleared by reading it (SO_ERROR): a reset this
 * side sends closes in its process's context, where the change is never missed, so without an
 * error the cause is unknown. */
static __always_inline __u8 flow_close_reason(const struct sock *sk, const struct tcp_sock *tp,
					      int oldstate, int err, bool late)
{
	unsigned long flags;

	if (!late)
		err = sk->sk_err;
	if (err == ECONNRESET || err == EPIPE)
		return PKT_CLOSE_RST_RECEIVED;
	if (err == ETIMEDOUT)
		return PKT_CLOSE_TIMEOUT;
	if (err == ECONNABORTED)
		return PKT_CLOSE_ABORTED;
	if (err)
		return tp->inet_conn.icsk_retransmits || tp->inet_conn.icsk_probes_out ?
			       PKT_CLOSE_TIMEOUT : PKT_CLOSE_UNKNOWN;
	if (oldstate == TCP_LAST_ACK || oldstate == TCP_CLOSING || oldstate == TCP_TIME_WAIT)
		return PKT_CLOSE_FIN;
	flags = sk->__sk_common.skc_flags;
	if (oldstate == TCP_FIN_WAIT2 && ((flags & (1 << SOCK_DONE)) ||
					  !(flags & (1 << SOCK_LINGER)) || sk->sk_lingertime))
		return PKT_CLOSE_FIN;
	if (late)
		return tp->inet_conn.icsk_retransmits || tp->inet_conn.icsk_probes_out ?
			       PKT_CLOSE_TIMEOUT : PKT_CLOSE_UNKNOWN;
	return PKT_CLOSE_RST_SENT;
}

/* A flow record: begin (at ESTABLISHED) or end (at TCP_CLOSE, with tcp_sock's counters, read
 * with plain loads through the BTF pointer). */
static __always_inline void flow_emit(const struct sock *sk, struct sk_state *st,
				      const struct pkt_conn *c, __u8 flags, int oldstate, int err,
				      bool late)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);
	struct pkt_record *rec;
	struct pkt_flow *f;
	void *ring = ring_here();
	__u64 now;

	rec = ring && tp ? bpf_ringbuf_reserve(ring, offsetof(struct pkt_record, hdr) +
							       sizeof(struct pkt_flow), 0) : NULL;
	if (!rec) {
		stat_inc_exact(STAT_FLOWS_LOST);
		return;
	}
	/* Stamped after it is reserved, as every record: see rings__safe_ns. */
	now = bpf_ktime_get_boot_ns();
	rec->ts_ns = now;
	rec->owner = st->owner;
	rec->pkt_len = 0;
	rec->ifindex = 0;
	rec->direction = 0;
	rec->l3_proto = c->family;
	rec->hdr_len = sizeof(struct pkt_flow);
	rec->kind = PKT_REC_FLOW;
	rec->ext_len = 0;
	rec->netns = c->netns;
	rec->ext_count = 0;
	rec->sk_proto = IPPROTO_TCP;
	rec->l4_proto = IPPROTO_TCP;
	rec->pad2 = 0;
	rec->ifname[0] = 0;
	f = (struct pkt_flow *)rec->hdr;
	__builtin_memset(f, 0, sizeof(*f));
	f->conn = *c;
	if (flags & PKT_FLOW_END) {
		if (st->flow_begin_ns) {
			flags |= PKT_FLOW_BEGIN_SEEN;
			f->duration_ns = now - st->flow_begin_ns;
		}
		f->bytes_acked = tp->bytes_acked;
		f->bytes_received = tp->bytes_received;
		f->bytes_retrans = tp->bytes_retrans;
		f->segs_out = tp->segs_out;
		f->segs_in = tp->segs_in;
		f->data_segs_out = tp->data_segs_out;
		f->data_segs_in = tp->data_segs_in;
		f->total_retrans = tp->total_retrans;
		f->srtt_us = tp->srtt_us >> 3;
		f->min_rtt_us = tp->rtt_min.s[0].v;
		f->delivered_ce = tp->delivered_ce;
		f->close_reason = flow_close_reason(sk, tp, oldstate, err, late);
		/* Our FIN went out in each of these states (write_seq counts it), and everything
		 * up to it is acknowledged: however the connection then ended, bytes_acked has it. */
		if ((oldstate == TCP_FIN_WAIT1 || oldstate == TCP_FIN_WAIT2 ||
		     oldstate == TCP_CLOSING || oldstate == TCP_LAST_ACK ||
		     oldstate == TCP_TIME_WAIT) &&
		    tp->snd_una == tp->write_seq)
			flags |= PKT_FLOW_FIN_ACKED;
		f->closed_first = st->closed_first;
		st->flow_begin_ns = 0;
	}
	rec->flags = flags;
	stat_inc_exact(STAT_FLOWS);
	ring_submit(ring, rec, offsetof(struct pkt_record, hdr) + sizeof(struct pkt_flow));
}

/* The flow events of one state change of a socket with pktrace's state (flow_events only).
 * A passive connection's record is the one cloned from its listener until a task takes it:
 * its begin names the listener's owner, provisional (PKT_FLOW_HELD: user space holds it with
 * the connection's packets until the claim, so it is emitted whatever the listener's owner's
 * scope), its end whoever took it. */
static __always_inline void flow_state(const struct sock *sk, struct sk_state *st, int oldstate,
				       int newstate, int err, bool late)
{
	struct pkt_conn c;

	if (sk->sk_protocol != IPPROTO_TCP)
		return;
	if (newstate == TCP_ESTABLISHED && (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV)) {
		st->flow_begin_ns = 0;
		st->closed_first = PKT_CLOSER_NONE;
		st->flow_passive = oldstate == TCP_SYN_RECV;
		st->flow_opened = 1;
		if (!st->owner.traced && !st->listener)
			return;
		st->flow_begin_ns = bpf_ktime_get_boot_ns();
		conn_of_sock(sk, &c);
		flow_emit(sk, st, &c,
			  (oldstate == TCP_SYN_RECV ? PKT_FLOW_PASSIVE : 0) |
				  (st->listener ? PKT_FLOW_HELD : 0),
			  oldstate, 0, false);
		return;
	}
	if (newstate == TCP_FIN_WAIT1 && !st->closed_first)
		st->closed_first = PKT_CLOSER_LOCAL;
	else if (newstate == TCP_CLOSE_WAIT && !st->closed_first)
		st->closed_first = PKT_CLOSER_REMOTE;
	if (newstate != TCP_CLOSE || oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV ||
	    oldstate == TCP_LISTEN || oldstate == TCP_CLOSE || !st->owner.traced)
		return;
	/* Opened before pktrace: an accepted socket is a copy of its listener and keeps the
	 * listener's backlog; a connect()ed one never had one (listen(fd, 0) aside). */
	if (!st->flow_opened)
		st->flow_passive = sk->sk_max_ack_backlog != 0;
	conn_of_sock(sk, &c);
	if (!c.lport)
		c.lport = st->seen.lport;
	flow_emit(sk, st, &c, PKT_FLOW_END | (st->flow_passive ? PKT_FLOW_PASSIVE : 0), oldstate,
		  err, late);
}

/* Whether a socket whose last state change handled left it in last has a close to come: not
 * before anything was seen since its SYN (an accepted socket's record still the listener's
 * clone), nor once its close was handled. */
static __always_inline bool close_pending(__u32 last)
{
	return last && last != TCP_CLOSE && last != TCP_LISTEN && last != TCP_SYN_SENT &&
	       last != TCP_SYN_RECV;
}

/* A connection leaves its full socket: remember its last owner for the packets that follow
 * (timewait, kernel replies); a new connection on the same addresses forgets the old one.
 * The owner is recorded as soon as the process closes the connection, in close()'s context,
 * and again at the transitions that follow (FIN_WAIT2, CLOSE), which run in softirq.
 *
 * Both programs on the tracepoint run this, one after the other. The kernel does not run a
 * tracing program that a softirq enters while the same program runs on that CPU (its
 * recursion guard): a softirq interrupting conn_state in one process's close() to handle other
 * connections' ACKs (a delayed-ACK timer firing) skips conn_state for their FIN_WAIT2 and
 * CLOSE, and one interrupting conn_state_nested skips that. The other program then does the
 * work, as the two never run at once on a CPU but in that nesting. nested: this is
 * conn_state_nested, which does nothing for a change conn_state has done (the socket's
 * state_seen says so; changes with no socket state are done twice, harmlessly). */
static __always_inline int conn_state_do(const struct sock *sk, const int oldstate,
					 const int newstate, const bool nested, const int err,
					 const bool late)
{
	struct sk_state *st;
	struct pkt_conn c;
	__u16 change;

	if (sk->sk_protocol != IPPROTO_TCP && sk->sk_protocol != IPPROTO_MPTCP_)
		return 0;
#ifdef PKTRACE_FAULT_MISS_CLOSES
	/* The test build (make build/fault/pktrace): closes with an error are skipped as the
	 * kernel skips those it makes in a softirq on some threads (close_missed); with
	 * fault_fin (PKTRACE_FAULT_FIN set), also those after a FIN, which carry none. */
	if (!late && newstate == TCP_CLOSE &&
	    (sk->sk_err || (fault_fin && (oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING ||
					  oldstate == TCP_LAST_ACK))))
		return 0;
#endif
	/* The socket may be freed from here on, and its address reused by a connection the
	 * kernel creates (an accepted one), which no socket creation hook sees. */
	if (newstate == TCP_CLOSE)
		owner_gen_bump();
	if (newstate == TCP_SYN_SENT || newstate == TCP_SYN_RECV) {
		conn_of_sock(sk, &c);
		conn_forget(&c);
		/* A socket connecting again (after a refused connect, or AF_UNSPEC): its next
		 * close is another connection's, to be kept under its own addresses, and its
		 * changes are new ones (a second refused connect repeats the first's). */
		st = bpf_sk_storage_get(&sk_owner, (struct sock *)sk, 0, 0);
		if (st) {
			/* A connection whose close no program saw, connecting again before a
			 * call or close() made up for it (close_missed): its end cannot be made
			 * any more. */
			if (newstate == TCP_SYN_SENT && sk->sk_protocol == IPPROTO_TCP &&
			    st->owner.traced && close_pending(st->seen.state_seen & 0xff))
				stat_inc_exact(STAT_CLOSES_UNSEEN);
			st->kept = PKT_KEPT_NONE;
			st->seen.state_seen = 0;
			st->published = 0; /* its next SYN publishes it again */
		}
		return 0;
	}
	if (oldstate == TCP_CLOSE && newstate != TCP_LISTEN)
		return 0;
	st = bpf_sk_storage_get(&sk_owner, (struct sock *)sk, 0, 0);
	if (!st)
		st = existing_take_sk(sk);
	if (!st && newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV)
		st = listener_take_sk(sk);
	if (!st)
		return 0;
	change = (__u16)(oldstate << 8 | newstate);
	if (nested && st->seen.state_seen == change)
		return 0;
	st->seen.state_seen = change;
	if (flow_events)
		flow_state(sk, st, oldstate, newstate, err, late);
	if (icmp_errors && (newstate == TCP_ESTABLISHED || newstate == TCP_CLOSE))
		tcp_conn_publish(sk, st, newstate == TCP_ESTABLISHED);
	if (newstate == TCP_LISTEN || oldstate == TCP_LISTEN) {
		conn_of_sock(sk, &c);
		__builtin_memset(c.raddr, 0, sizeof(c.raddr));
		c.rport = 0;
		if (newstate == TCP_LISTEN) {
			st->listener = 1;
			owner_gen_bump();
			st->seen.lport = c.lport;
			bpf_map_update_elem(&listeners, &c, &st->owner, BPF_ANY);
		} else {
			c.lport = st->seen.lport;
			bpf_map_delete_elem(&listeners, &c);
		}
		return 0;
	}
	if (newstate != TCP_CLOSE) {
		st->seen.lport = sk->__sk_common.skc_num;
		/* Closed by its process (close(), or shut down both ways; the socket is dead or
		 * about to be): remembered now, in close()'s context for FIN_WAIT1 and LAST_ACK (see
		 * above), and again when an orphan moves on, since packets may reach its timewait
		 * socket before the full one reports its close. */
		if ((newstate == TCP_FIN_WAIT1 || newstate == TCP_FIN_WAIT2 ||
		     newstate == TCP_CLOSING || newstate == TCP_LAST_ACK) &&
		    ((sk->__sk_common.skc_flags & (1 << SOCK_DEAD)) ||
		     (sk->sk_shutdown & SHUTDOWN_MASK) == SHUTDOWN_MASK)) {
			conn_of_sock(sk, &c);
			if (newstate == TCP_LAST_ACK)
				conn_remember(&closed_conns, &c, st, PKT_KEPT_CLOSED);
			else if (conn_remember(&gone_conns, &c, st, PKT_KEPT_GONE))
				stat_inc_exact(STAT_GONE_FULL);
		}
		return 0;
	}
	conn_of_sock(sk, &c);
	if (!c.lport)
		c.lport = st->seen.lport;
	/* Only a connection its process closed first goes on as a timewait socket: gone_conns is
	 * sized for those (the kernel's timewait and orphan limits), so none is pushed out; every
	 * other close goes to closed_conns. */
	if (oldstate == TCP_FIN_WAIT1 || oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING ||
	    oldstate == TCP_TIME_WAIT) {
		if (conn_remember(&gone_conns, &c, st, PKT_KEPT_GONE))
			stat_inc_exact(STAT_GONE_FULL);
	} else {
		conn_remember(&closed_conns, &c, st, PKT_KEPT_CLOSED);
	}
	if (st->listener)
		claim_emit(sk, &st->owner, PKT_CLAIM_CLOSED, &c);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(conn_state, const struct sock *sk, const int oldstate, const int newstate)
{
	return conn_state_do(sk, oldstate, newstate, false, 0, false);
}

/* The same tracepoint again, a program of its own with its own recursion guard (see
 * conn_state_do). Attached after conn_state, so it runs second: a change it finds not done
 * is one the kernel skipped conn_state for. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(conn_state_nested, const struct sock *sk, const int oldstate, const int newstate)
{
	return conn_state_do(sk, oldstate, newstate, true, 0, false);
}

/* A connection whose close the kernel ran neither state program for: it does not run tracing
 * programs in a softirq taken on some threads (seen here on the VM agent's), and a timeout or
 * a reset received closes in a softirq. Its process still holds the socket, and learns of the
 * close from its next call or its own close() (tcp_destroy_sock): the close's work (the flow's
 * end, remembering the owner) is done then, once, from the last change handled (the socket's
 * state is read first: the kernel sets it after the tracepoint's programs have run). err: the
 * error the process was given, else sk_err; send: a send's, which is EPIPE also when sk_err is
 * clear (a reset sets EPIPE only in CLOSE_WAIT); call: from a call (else close()), which
 * claims the close only with its error or after the peer's FIN (below). */
static __always_inline void close_missed(const struct sock *sk, int err, const bool send,
					 const bool call)
{
	union sk_seen was, now;
	struct sk_state *st;
	__u32 last = 0;
	int i, e = 0;

	/* (Not an MPTCP socket: its subflows are TCP sockets, found when they are freed.) */
	if (*(volatile unsigned char *)&sk->__sk_common.skc_state != TCP_CLOSE ||
	    sk->sk_protocol != IPPROTO_TCP)
		return;
	st = bpf_sk_storage_get(&sk_owner, (struct sock *)sk, 0, 0);
	if (!st)
		return;
	/* Claimed by compare-and-swap: two threads failing calls on the same dead socket at once
	 * make one end. A packet program may rewrite sent_ifindex meanwhile: then again. */
	for (i = 0; i < 4; i++) {
		was.word = *(volatile __u64 *)&st->seen.word;
		last = was.state_seen & 0xff;
		if (!close_pending(last))
			return;
		e = err == ENOTCONN || (send && err == EPIPE && last != TCP_CLOSE_WAIT) ? 0 : err;
		e = e ?: sk->sk_err;
		/* Without an error, a call claims only a close that carries none: the peer's FIN
		 * was received (SOCK_DONE: FIN_WAIT2, CLOSING or LAST_ACK to CLOSE), which recv
		 * reports before any error. Else it is left to the call given the error (threads
		 * woken by one reset), or to close(). */
		if (!e && call &&
		    (last == TCP_CLOSE_WAIT || !(sk->__sk_common.skc_flags & (1UL << SOCK_DONE))))
			return;
		now = was;
		now.state_seen = last << 8 | TCP_CLOSE;
		if (__sync_val_compare_and_swap(&st->seen.word, was.word, now.word) == was.word)
			break;
	}
	if (i == 4) {
		/* not reachable but by a packet program rewriting the word 4 times over */
		if (st->owner.traced)
			stat_inc_exact(STAT_CLOSES_UNSEEN);
		return;
	}
	if (st->owner.traced)
		stat_inc_exact(STAT_CLOSES_LATE);
	conn_state_do(sk, last, TCP_CLOSE, false, e, true);
}

/* A failed or empty call on a socket in CLOSE: the error is its close's (the kernel hands it
 * out once, clearing sk_err), or end of file (the error may still be in sk_err). Not a
 * non-blocking call that found nothing, the common failure, which no close gives. After
 * owner_use: the end names the task that took the connection. */
static __always_inline int owner_call(struct sock *sk, int ret, const bool send)
{
	owner_use(sk);
	if (ret <= 0 && ret != -EAGAIN && ret != -EINTR)
		close_missed(sk, -ret, send, true);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(owner_send, struct sock *sk, int ret, int flags)
{
	return owner_call(sk, ret, true);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(owner_recv, struct sock *sk, int ret, int flags)
{
	return owner_call(sk, ret, false);
}

/* A TCP socket freed: after its close, in the context of the close() that let it go if its
 * process still held it. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(conn_destroy, struct sock *sk)
{
	close_missed(sk, 0, false, false);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(scope_follow_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	__u8 one = 1;

	if (!follow_forks || ptgid == ctgid || !bpf_map_lookup_elem(&scope_pids, &ptgid))
		return 0;
	if (bpf_map_update_elem(&scope_pids, &ctgid, &one, BPF_ANY))
		stat_inc_exact(STAT_FOLLOW_FULL);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(scope_forget_exit, struct task_struct *task, bool group_dead)
{
	__u32 tgid = task->tgid;

	/* A followed process leaves the scope when its last thread exits, so a reused pid is not
	 * traced; a leader thread exiting alone (pthread_exit) does not end the process. */
	if (follow_forks && group_dead)
		bpf_map_delete_elem(&scope_pids, &tgid);
	return 0;
}

SEC("iter/task_file")
int owner_existing(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct pkt_owner o = {};
	struct socket *sock;
	struct sock *sk;
	__u16 family;
	__u64 ino;

	if (!task || !file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk;
	if (!sk || !sock_class_owned(sock_class(sk->sk_type, sk->sk_protocol)))
		return 0;
	family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	ino = file->f_inode->i_ino;
	o.pid = task->tgid;
	o.tid = task->pid;
	o.ppid = task->real_parent->tgid;
	o.uid = task->cred->uid.val;
	o.cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	o.uts_key = uts_name_remember(task);
	bpf_probe_read_kernel_str(o.comm, sizeof(o.comm), task->comm);
	o.traced = owner_in_scope(&o, task);
	if (bpf_map_update_elem(&existing_owner, &ino, &o, BPF_NOEXIST) == -E2BIG)
		stat_inc_exact(STAT_EXISTING_FULL);
	/* A listener: its connections to come find its owner by address and port, as those of a
	 * listener that went LISTEN under pktrace do (SYN cookies; flows with -e flows alone). */
	if (sk->__sk_common.skc_state == TCP_LISTEN) {
		struct pkt_conn c;

		conn_of_sock(sk, &c);
		__builtin_memset(c.raddr, 0, sizeof(c.raddr));
		c.rport = 0;
		bpf_map_update_elem(&listeners, &c, &o, BPF_NOEXIST);
	}
	return 0;
}

/* Inode of a socket's file, or 0 (no file: not yet accepted, or closed). A read-only view of
 * the kernel's socket: any kind, where bpf_skc_to_tcp_sock knows TCP only. */
static __always_inline __u64 sock_ino(struct bpf_sock *sk)
{
	struct sock *ks = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct sock));
	struct socket *sock = ks->sk_socket;

	if (!sock || !sock->file)
		return 0;
	return sock->file->f_inode->i_ino;
}

/* A socket older than pktrace: move the owner the iterator recorded into its storage. */
static __always_inline struct sk_state *owner_existing_take(struct bpf_sock *sk)
{
	return existing_move(sk, sock_ino(sk),
			     sk->protocol == IPPROTO_TCP && sk->state == BPF_TCP_LISTEN);
}

/* What is in front of the transport header: the IP header and, for IPv6, the extension
 * headers. */
struct l3_info {
	struct __sk_buff *skb;
	__u32 off;    /* walking: offset of the header named by nh; at the end, of the transport */
	__u16 ip_len; /* IP header bytes to copy: IPv4 with options, or the IPv6 fixed header */
	__u8 nh;      /* at the end: the transport protocol */
	__u8 count;   /* extension headers, saturating at 255 */
	__u8 found;   /* a transport header (anything but an extension header) was reached */
	__u8 l3;
	__u8 pad[2];
	__u8 types[PKT_EXT_TYPES];
};

static __always_inline void ext_count_one(struct l3_info *w, __u32 i)
{
	if (i < PKT_EXT_TYPES)
		w->types[i & (PKT_EXT_TYPES - 1)] = w->nh;
	if (w->count < 255)
		w->count++;
}

static __always_inline bool ipv6_is_ext(__u8 nh)
{
	return nh == IPV6_HOPOPTS || nh == IPV6_ROUTING || nh == IPV6_FRAGMENT ||
	       nh == IPV6_DSTOPTS || nh == IPPROTO_AH;
}

/* One step along an IPv6 extension-header chain (a bpf_loop callback): stop at the transport
 * header, whatever its protocol. */
static long ext_step(__u32 i, void *ctx)
{
	struct l3_info *w = ctx;
	__u8 b[4];

	if (!ipv6_is_ext(w->nh)) {
		w->found = 1;
		return 1;
	}
	if (bpf_skb_load_bytes(w->skb, w->off, b, sizeof(b)))
		return 1;
	switch (w->nh) {
	case IPV6_HOPOPTS:
	case IPV6_ROUTING:
	case IPV6_DSTOPTS:
		w->off += (b[1] + 1) * 8;
		break;
	case IPV6_FRAGMENT:
		w->off += 8;
		if ((b[2] << 8 | b[3]) & 0xfff8) { /* a later fragment: no TCP header in it */
			ext_count_one(w, i);
			return 1;
		}
		break;
	case IPPROTO_AH:
		w->off += (b[1] + 2) * 4;
		break;
	default:
		return 1;
	}
	ext_count_one(w, i);
	w->nh = b[0];
	return 0;
}

/* Find the transport header, however long the chain in front of it: no packet the kernel
 * delivers may hide its transport header from pktrace. Returns its offset (its protocol in
 * w->nh), or -1 (w->ip_len still set). */
static __always_inline int l3_walk(struct __sk_buff *skb, struct l3_info *w)
{
	w->skb = skb;
	w->count = 0;
	w->found = 0;
	w->ip_len = 0;
	w->nh = 0;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(long)skb->data, copy;

		w->l3 = 4;
		/* Read in place when the header is in the linear part (always, for TCP). */
		if ((void *)(ip + 1) > (void *)(long)skb->data_end) {
			if (bpf_skb_load_bytes(skb, 0, &copy, sizeof(copy)))
				return -1;
			ip = &copy;
		}
		w->ip_len = ip->ihl * 4;
		w->nh = ip->protocol;
		if ((ip->frag_off & bpf_htons(0x1fff)) || w->ip_len < 20)
			return -1;
		return w->ip_len;
	}
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return -1;
	w->l3 = 6;
	if (bpf_skb_load_bytes(skb, 6, &w->nh, 1))
		return -1;
	w->ip_len = sizeof(struct ipv6hdr);
	w->off = sizeof(struct ipv6hdr);
	if (!ipv6_is_ext(w->nh))
		return w->off;
	/* Each step moves on at least 8 bytes: enough steps for any packet. */
	bpf_loop(65536 / 8, ext_step, w, 0);
	if (!w->found || w->off > skb->len)
		return -1;
	return w->off;
}

/* Two plain 8-byte loads: cheaper than a string-copy helper; user space stops at the NUL. */
static __always_inline void ifname_copy(char *dst, const struct net_device *dev)
{
	__u64 *d = (__u64 *)dst;

	d[0] = dev ? *(__u64 *)&dev->name[0] : 0;
	d[1] = dev ? *(__u64 *)&dev->name[8] : 0;
}

/* The id of an owner definition for o (with dev's name) in ring: the one st's packets sent
 * already while it holds, else a new one, sent now (st NULL: o is no socket's own, a new one
 * each time; rare). 0: the ring buffer had no room. */
#define compiler_barrier() asm volatile("" ::: "memory")

/*
 * A definition this CPU sent for owner o on ifindex, still above the floor; 0: none. Programs
 * of this CPU may interrupt each other (a softirq's receive in a process's send): a reader
 * that overlaps a write sees def_seq odd, or changed when it is done, and uses nothing.
 */
static __always_inline __u64 def_cached(struct cpu_note *note, const struct pkt_owner *o,
					__u32 ifindex, const __u64 *ifname)
{
	__u32 seq = *(volatile __u32 *)&note->def_seq;
	__u64 id = 0;

	if (seq & 1)
		return 0;
	compiler_barrier();
	for (int i = 0; i < 4; i++) {
		struct def_slot *d = &note->defs[i];

		if (d->id && d->id >= owner_floor && d->ifindex == ifindex &&
		    !((d->ifname[0] ^ ifname[0]) | (d->ifname[1] ^ ifname[1])) &&
		    owner_same(&d->owner, o)) {
			id = d->id;
			break;
		}
	}
	compiler_barrier();
	return *(volatile __u32 *)&note->def_seq == seq ? id : 0;
}

/* Note a definition just sent, unless this program interrupted another one's write. */
static __always_inline void def_remember(struct cpu_note *note, const struct pkt_owner *o,
					 __u32 ifindex, const __u64 *ifname, __u64 id)
{
	__u32 seq = *(volatile __u32 *)&note->def_seq;
	struct def_slot *d = &note->defs[note->def_next & 3];

	if (seq & 1)
		return;
	*(volatile __u32 *)&note->def_seq = seq + 1;
	compiler_barrier();
	d->id = id;
	d->ifindex = ifindex;
	d->ifname[0] = ifname[0];
	d->ifname[1] = ifname[1];
	d->owner = *o;
	note->def_next++;
	compiler_barrier();
	*(volatile __u32 *)&note->def_seq = seq + 2;
}

static __always_inline __u64 owner_ref(void *ring, struct sk_state *st,
				       const struct pkt_owner *o, const struct net_device *dev)
{
	__u32 ifindex = dev ? dev->ifindex : 0;
	struct cpu_note *note;
	struct pkt_owner_def *def;
	__u64 ifname[PKT_IFNAME_LEN / 8];
	__u64 id;

	/* A socket's devices are all in its own namespace: there the index names the device. */
	if (st && st->sent_id && st->sent_id >= owner_floor && st->seen.sent_ifindex == ifindex)
		return st->sent_id;
	note = cpu_note();
	ifname_copy((char *)ifname, dev);
	id = note ? def_cached(note, o, ifindex, ifname) : 0;
	if (!id) {
		def = bpf_ringbuf_reserve(ring, sizeof(*def), 0);
		if (!def)
			return 0;
		id = __sync_fetch_and_add(&owner_seq, 1) + 1;
		def->ts_ns = bpf_ktime_get_boot_ns();
		def->kind = PKT_REC_OWNER;
		def->pad[0] = def->pad[1] = def->pad[2] = 0;
		def->ifindex = ifindex;
		def->id = id;
		def->owner = *o;
		__builtin_memcpy(def->ifname, ifname, PKT_IFNAME_LEN);
		bpf_ringbuf_submit(def, BPF_RB_NO_WAKEUP);
		if (note)
			def_remember(note, o, ifindex, ifname, id);
	}
	if (st) {
		st->sent_id = id;
		st->seen.sent_ifindex = ifindex;
	}
	return id;
}

/* A slot taken in a fast ring: its header, to commit it with, and the ring's head just past
 * it, to tell at commit whether another record was reserved after it meanwhile. */
struct fast_slot {
	__u64 *hdr;
	struct pkt_fast_ctl *ctl;
	__u64 after;
};

/* A slot in this CPU's fast ring for a tiny packet record, NULL if the ring is full (or there
 * is none, or it stayed contended): fs then says where it is. The position is taken by
 * compare-and-swap only if the slot is free, so a program that comes in on top of another on
 * this CPU (a softirq, or another task when this one is preempted) can never take a slot the
 * reader has not given back. */
static __always_inline struct pkt_wire *fast_reserve(struct fast_slot *fs)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u8 *v = bpf_map_lookup_elem(&fast_rings, &cpu);
	struct pkt_fast_ctl *ctl = (struct pkt_fast_ctl *)v;
	__u64 pos = 0, head;
	int i;

	if (!fast_mask || !v)
		return NULL;
	for (i = 0; i < 3; i++) {
		head = *(volatile __u64 *)&ctl->head;
		if (head - *(volatile __u64 *)&ctl->tail > fast_mask + 1 - PKT_FAST_SLOT)
			return NULL;
		if (__sync_val_compare_and_swap(&ctl->head, head, head + PKT_FAST_SLOT) == head) {
			pos = head;
			break;
		}
	}
	if (i == 3)
		return NULL;
	fs->ctl = ctl;
	fs->after = pos + PKT_FAST_SLOT;
	pos &= fast_mask & ~(__u64)(PKT_FAST_SLOT - 1);
	barrier_var(pos); /* masked before the control part is added: the verifier's bound */
	v += pos + PKT_FAST_CTL;
	fs->hdr = (__u64 *)v;
	return (struct pkt_wire *)(v + 8);
}

/* Reserve a packet record with room for hdr_room header bytes (a constant) and fill all but
 * hdr[]; its owner o (st's own, or NULL: see owner_ref) by the id of a definition. fs
 * non-NULL: a tiny record may go in the fast ring, and fs->hdr is then set (else NULL). The
 * record is stamped after it is reserved: see rings__safe_ns. */
static __always_inline struct pkt_wire *record_open(struct sk_state *st, const struct pkt_owner *o,
						    __u8 direction, __u8 l3, __u32 pkt_len,
						    struct net_device *dev, __u8 flags,
						    const __u32 hdr_room, struct fast_slot *fs)
{
	void *ring = ring_here();
	struct pkt_wire *rec = NULL;
	__u64 id;

	/* The owner definition first, in the BPF ring buffer: stamped before the record. */
	id = ring ? owner_ref(ring, st, o, dev) : 0;
	if (fs) {
		fs->hdr = NULL;
		if (id && hdr_room == PKT_HDR_TINY)
			rec = fast_reserve(fs);
	}
	if (!rec && id)
		rec = bpf_ringbuf_reserve(ring, offsetof(struct pkt_wire, hdr) + hdr_room, 0);
	if (!rec) {
		stat_inc_exact(STAT_LOST_RINGBUF);
		return NULL;
	}
	rec->ts_ns = bpf_ktime_get_boot_ns();
	rec->kind = PKT_REC_PACKET;
	rec->flags = flags;
	rec->pkt_len = pkt_len;
	rec->owner_id = id;
	rec->direction = direction;
	rec->l3_proto = l3;
	rec->ext_len = 0;
	rec->ext_count = 0;
	rec->sk_proto = IPPROTO_TCP;
	rec->l4_proto = IPPROTO_TCP;
	rec->pad2 = 0;
	rec->ifindex = 0;
	rec->netns = 0;
	if (dev) {
		rec->ifindex = dev->ifindex;
		rec->netns = dev->nd_net.net->ns.inum;
	}
	return rec;
}

/* A packet record written: its counters. */
static __always_inline void record_count(const struct pkt_wire *rec)
{
	stat_inc(rec->flags & PKT_F_DEVICE ? STAT_DEV_EVENTS : STAT_EVENTS);
	if (rec->flags & PKT_F_HELD)
		stat_inc(STAT_HELD);
}

/* slot: ring-buffer space the record takes (with its 8-byte header). */
static __always_inline void record_submit_slot(struct pkt_wire *rec, __u32 len, __u64 slot)
{
	void *ring = ring_here();

	rec->hdr_len = len;
	record_count(rec);
	ring_submit(ring, rec, slot);
}

static __always_inline void record_submit(struct pkt_wire *rec, __u32 len)
{
	record_submit_slot(rec, len, RINGBUF_SLOT);
}

/* Commit a tiny record in the fast ring: its length into the slot's header, last, with
 * PKT_FAST_OVERTAKEN if another record was reserved after it since (a program that came in on
 * top of this one: it may be stamped earlier). On x86 a plain store after the record's stores
 * is seen after them (stores are not reordered, and the JIT keeps the program's order; the
 * empty asm keeps the compiler's): no locked instruction. Elsewhere an atomic exchange, a full
 * barrier. */
static __always_inline void fast_commit(const struct fast_slot *fs, struct pkt_wire *rec,
					__u32 len)
{
	__u64 word = offsetof(struct pkt_wire, hdr) + PKT_HDR_TINY;

	rec->hdr_len = len;
	record_count(rec);
	if (*(volatile __u64 *)&fs->ctl->head != fs->after)
		word |= PKT_FAST_OVERTAKEN;
#if defined(__TARGET_ARCH_x86)
	asm volatile("" ::: "memory");
	*(volatile __u64 *)fs->hdr = word;
#else
	__sync_lock_test_and_set(fs->hdr, word);
#endif
}

/* --snaplen: the payload after the headers (at, in the packet), as much as snaplen leaves room
 * for beside the hdr_len header bytes already in the record, and the record's snap[] has (room,
 * a constant). */
static __always_inline void record_snap(struct __sk_buff *skb, struct pkt_wire *rec,
					__u32 at, __u32 hdr_len, const __u32 snap_room)
{
	__u64 n = skb->len > at ? skb->len - at : 0;
	__u32 room = snaplen > hdr_len ? snaplen - hdr_len : 0;

	rec->snap_len = 0;
	if (n > room)
		n = room;
	barrier_var(n);
	n &= 0x1fff;
	if (n > snap_room) /* a constant to the verifier: the record's snap[] room */
		n = snap_room;
	if (n < 1 || !hdr_len)
		return;
	if (!bpf_skb_load_bytes(skb, at, rec->snap, n))
		rec->snap_len = n;
}

/* A small record's headers from kernel memory at l3p (len bytes, cut to fit), then submit. */
static __always_inline void record_submit_kernel(struct pkt_wire *rec, const void *l3p,
						 __u32 len)
{
	barrier_var(len);
	len &= 0x1ff;
	if (len > PKT_HDR_SMALL)
		len = PKT_HDR_SMALL;
	if (len < 1 || bpf_probe_read_kernel(rec->hdr, len, l3p))
		len = 0;
	record_submit(rec, len);
}

/* The first n bytes of the packet (n a multiple of 4, at most PKT_HDR_TINY) into dst by plain
 * loads from its linear part, if they are all there: the headers of nearly every packet are,
 * and a copy helper's call costs more than the copy (bench: cgroup_skb ns per run). False: not
 * all in the linear part, nothing was copied for sure. */
static __always_inline bool hdr_copy_linear(struct __sk_buff *skb, __u8 *dst, __u32 n)
{
	void *p = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u32 i;

	if ((n & 3) || p + n > end)
		return false;
#pragma unroll
	for (i = 0; i < PKT_HDR_TINY / 8; i++) {
		if (i * 8 + 8 > n) {
			if (i * 8 + 4 == n) {
				if (p + i * 8 + 4 > end)
					return false;
				*(__u32 *)(dst + i * 8) = *(__u32 *)(p + i * 8);
			}
			break;
		}
		if (p + i * 8 + 8 > end)
			return false;
		*(__u64 *)(dst + i * 8) = *(__u64 *)(p + i * 8);
	}
	return true;
}

/* One record from a socket hook: the IP header, the transport header wherever it starts
 * (tcp_len 0: none reached), and the extension-header types, each copied with
 * bpf_skb_load_bytes. snap_room (a constant; 0: none): a --snaplen record with room for that
 * many payload bytes, the payload after the headers too
 * (only for packets without an extension-header chain, transport header reached). */
static __always_inline int emit_skb(struct __sk_buff *skb, struct sk_state *st,
				    const struct pkt_owner *o, __u8 direction, const struct l3_info *w, int off,
				    __u32 tcp_len, __u8 flags, __u8 sk_proto, const __u32 hdr_room,
				    const __u32 snap_room)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	__u32 ip_len = w->ip_len, ntypes = w->count, len;
	struct pkt_wire *rec;
	struct fast_slot fs = {};

	if (snap_room)
		rec = record_open(st, o, direction, w->l3, skb->len, kskb->dev, flags,
				  offsetof(struct pkt_wire, snap) -
					  offsetof(struct pkt_wire, hdr) + snap_room, NULL);
	else
		rec = record_open(st, o, direction, w->l3, skb->len, kskb->dev, flags, hdr_room,
				  &fs);
	if (!rec)
		return 1;
	rec->sk_proto = sk_proto;
	rec->l4_proto = w->nh;
	if (!rec->ifindex)
		rec->ifindex = skb->ifindex;
	/* Where the walk ended (at TCP, or where it gave up), saturating at 65535. */
	if (w->l3 == 6 && w->count)
		rec->ext_len = w->off - sizeof(struct ipv6hdr) > 0xffff ?
				       0xffff : w->off - sizeof(struct ipv6hdr);
	rec->ext_count = w->count;
	if (ntypes > PKT_EXT_TYPES)
		ntypes = PKT_EXT_TYPES;
	barrier_var(ip_len);
	barrier_var(tcp_len);
	ip_len &= 0x3f;
	tcp_len &= 0x3f;
	ntypes &= 0x7f;
	/* An unreadable header leaves hdr_len 0: user space counts it as a decode error, once. */
	len = 0;
	if (hdr_room == PKT_HDR_TINY) {
		/* The IP and transport headers back to back (the caller checked): one copy. */
		__u32 n = ip_len + tcp_len;

		barrier_var(n);
		n &= 0x7f;
		if (n && n <= PKT_HDR_TINY &&
		    (hdr_copy_linear(skb, rec->hdr, n) || !bpf_skb_load_bytes(skb, 0, rec->hdr, n)))
			len = n;
	} else if (ip_len && ip_len + tcp_len + ntypes <= hdr_room &&
	    !bpf_skb_load_bytes(skb, 0, rec->hdr, ip_len)) {
		len = ip_len;
		if (tcp_len && bpf_skb_load_bytes(skb, off, rec->hdr + len, tcp_len))
			len = 0;
		else
			len += tcp_len;
		barrier_var(ntypes);
		if (ntypes > PKT_EXT_TYPES)
			ntypes = PKT_EXT_TYPES;
		if (len && ntypes && len <= hdr_room - PKT_EXT_TYPES) {
			bpf_probe_read_kernel(rec->hdr + len, ntypes, w->types);
			len += ntypes;
		}
	}
	if (snap_room) {
		record_snap(skb, rec, off + tcp_len, len, snap_room);
		record_submit_slot(rec, len, offsetof(struct pkt_wire, snap) + snap_room + 8);
		return 1;
	}
	if (fs.hdr)
		fast_commit(&fs, rec, len);
	else
		record_submit(rec, len);
	return 1;
}

/* The connection a packet belongs to, from its headers at off (TCP at tcp_off). */
static __always_inline int conn_of_skb(struct __sk_buff *skb, __u8 l3, int tcp_off,
				       __u8 direction, __u32 netns, struct pkt_conn *c)
{
	__u16 ports[2];
	int a = l3 == 4 ? 12 : 8, alen = l3 == 4 ? 4 : 16;
	int local = direction == PKT_EGRESS ? 0 : 1;

	__builtin_memset(c, 0, sizeof(*c));
	c->netns = netns;
	c->family = l3;
	if (bpf_skb_load_bytes(skb, tcp_off, ports, sizeof(ports)))
		return -1;
	c->lport = bpf_ntohs(ports[local]);
	c->rport = bpf_ntohs(ports[!local]);
	if (l3 == 4) {
		if (bpf_skb_load_bytes(skb, a + local * 4, c->laddr, 4) ||
		    bpf_skb_load_bytes(skb, a + !local * 4, c->raddr, 4))
			return -1;
		return 0;
	}
	if (bpf_skb_load_bytes(skb, a + local * 16, c->laddr, 16) ||
	    bpf_skb_load_bytes(skb, a + !local * 16, c->raddr, 16))
		return -1;
	(void)alen;
	return 0;
}

/* An ICMP or ICMPv6 error's quoted packet, from b[] (the ICMP header, then the quoted IP header
 * and 8 bytes of its transport header; n bytes valid): the connection of the socket that sent
 * it (its source is local), with the protocol in c->pad. -1: not an error, or not readable. */
#define ICMP_QUOTE_LEN 76 /* ICMP header 8 + quoted IPv4 header up to 60 + ports or echo id */
static __always_inline int icmp_quoted_conn(const __u8 *b, __u32 n, __u8 l3, __u32 netns,
					    struct pkt_conn *c)
{
	__u32 q = 8, l4;
	__u8 type = b[0], proto;

	__builtin_memset(c, 0, sizeof(*c));
	c->netns = netns;
	if (l3 == 4) {
		/* Destination unreachable, source quench, redirect, time exceeded, parameter. */
		if (type != 3 && type != 4 && type != 5 && type != 11 && type != 12)
			return -1;
		if (n < q + 20 || (b[q] >> 4) != 4)
			return -1;
		l4 = q + (b[q] & 0xf) * 4;
		proto = b[q + 9];
		c->family = 4;
		__builtin_memcpy(c->laddr, &b[q + 12], 4);
		__builtin_memcpy(c->raddr, &b[q + 16], 4);
	} else {
		/* Destination unreachable, packet too big, time exceeded, parameter problem. */
		if (type < 1 || type > 4)
			return -1;
		if (n < q + 40 || (b[q] >> 4) != 6)
			return -1;
		l4 = q + 40;
		proto = b[q + 6];
		c->family = 6;
		__builtin_memcpy(c->laddr, &b[q + 8], 16);
		__builtin_memcpy(c->raddr, &b[q + 24], 16);
	}
	if (l4 + 6 > n || l4 + 6 > ICMP_QUOTE_LEN)
		return -1;
	l4 &= 0x7f;
	c->pad = proto;
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6_) {
		/* A ping socket's echo request: its identifier is its port. */
		if (b[l4] != 8 && b[l4] != 128)
			return -1;
		c->lport = b[l4 + 4] << 8 | b[l4 + 5];
		__builtin_memset(c->laddr, 0, sizeof(c->laddr));
		__builtin_memset(c->raddr, 0, sizeof(c->raddr));
		return 0;
	}
	c->lport = b[l4] << 8 | b[l4 + 1];
	c->rport = b[l4 + 2] << 8 | b[l4 + 3];
	return 0;
}

/* The owner of the socket an ICMP error quotes: a UDP or ping socket by its local port, a TCP
 * connection that has closed by its addresses. NULL: none known. */
static __always_inline struct pkt_owner *icmp_quoted_owner(struct pkt_conn *c)
{
	struct pkt_owner *o;

	if (c->pad == IPPROTO_TCP) {
		/* Established (its owner published), or closed (its last owner remembered). */
		o = bpf_map_lookup_elem(&local_socks, c);
		if (o)
			return o;
		c->pad = 0;
		o = bpf_map_lookup_elem(&gone_conns, c);
		return o ? o : bpf_map_lookup_elem(&closed_conns, c);
	}
	if (c->pad == IPPROTO_UDPLITE)
		c->pad = IPPROTO_UDP;
	if (c->pad == IPPROTO_ICMPV6_)
		c->pad = IPPROTO_ICMP;
	__builtin_memset(c->laddr, 0, sizeof(c->laddr));
	__builtin_memset(c->raddr, 0, sizeof(c->raddr));
	c->rport = 0;
	return bpf_map_lookup_elem(&local_socks, c);
}

/* A UDP or ping socket's first packet out under its owner: publish the owner by local port,
 * for the ICMP errors that will quote its packets. */
static __always_inline void local_sock_publish(struct __sk_buff *skb, struct sk_state *st,
					       const struct l3_info *w, int off, __u32 cls,
					       __u32 netns)
{
	struct pkt_conn k = {};
	__u8 b[6];

	if (bpf_skb_load_bytes(skb, off, b, sizeof(b)))
		return;
	k.netns = netns;
	k.family = w->l3;
	if (cls == PKT_SOCK_UDP && (w->nh == IPPROTO_UDP || w->nh == IPPROTO_UDPLITE)) {
		k.pad = IPPROTO_UDP;
		k.lport = b[0] << 8 | b[1];
	} else if (cls == PKT_SOCK_ICMP && (b[0] == 8 || b[0] == 128)) {
		k.pad = IPPROTO_ICMP;
		k.lport = b[4] << 8 | b[5];
	} else {
		return;
	}
	bpf_map_update_elem(&local_socks, &k, &st->owner, BPF_ANY);
	st->published = 1;
}

/* An owned socket's packet on its way out, not yet published: what its ICMP errors will be
 * matched to (a UDP or ping socket's local port; a connect's first SYN, since the error that
 * fails it, unreachable or prohibited, comes before ESTABLISHED would publish it). */
static __always_inline void errors_publish(struct __sk_buff *skb, const struct sock *ksk,
					   struct sk_state *st, const struct l3_info *w, int off,
					   __u32 cls, __u32 netns)
{
	if (cls == PKT_SOCK_UDP || cls == PKT_SOCK_ICMP)
		local_sock_publish(skb, st, w, off, cls, netns);
	else if (cls == PKT_SOCK_TCP && ksk->__sk_common.skc_state == TCP_SYN_SENT)
		tcp_conn_publish(ksk, st, true);
}

/* Bytes of the transport header a record carries: TCP with its options, 8 of UDP and ICMP. */
static __always_inline __u32 l4_header_len(struct __sk_buff *skb, const struct l3_info *w,
					   int off)
{
	__u32 len;
	__u8 doff;

	if (off < 0)
		return 0;
	if (w->nh == IPPROTO_TCP) {
		__u8 *p = (void *)(long)skb->data + (off & 0xff) + 12;

		if (off < 0x100 && (void *)(p + 1) <= (void *)(long)skb->data_end)
			doff = *p;
		else if (bpf_skb_load_bytes(skb, off + 12, &doff, 1))
			doff = 5 << 4;
		len = (doff >> 4) * 4;
		if (len < 20)
			len = 20;
	} else if (w->nh == IPPROTO_UDP || w->nh == IPPROTO_UDPLITE || w->nh == IPPROTO_ICMP ||
		   w->nh == IPPROTO_ICMPV6_) {
		len = 8;
	} else {
		return 0;
	}
	if (off + len > skb->len)
		len = skb->len > (__u32)off ? skb->len - off : 0;
	return len;
}

/* -i and -Q: whether packets of dev in this direction are wanted at all. */
static __always_inline bool dev_wanted(const struct net_device *dev, __u8 direction)
{
	if (!(directions & (1 << direction)))
		return false;
	if (!if_index)
		return true;
	return dev && (__u32)dev->ifindex == if_index && dev->nd_net.net->ns.inum == if_netns;
}

/* --once: the address of skb's data buffer as a number: the verifier refuses shifts and XORs
 * on the pointer itself, a load through a read-only view of the skb gives the plain value. */
static __always_inline __u64 once_head(const struct sk_buff *skb)
{
	const __u8 *raw = bpf_rdonly_cast(skb, 0);

	return *(const __u64 *)(raw + bpf_core_field_offset(struct sk_buff, head));
}

/* --once: a data buffer's slot. Buffers are at least 64-byte aligned; higher bits mixed in. */
static __always_inline __u64 *once_slot_of(__u64 head)
{
	__u32 i = (__u32)((head >> 6) ^ (head >> 17)) & (ONCE_SLOTS - 1);

	return bpf_map_lookup_elem(&once_sent, &i);
}

/* --once: what a slot holds for this buffer and L3 length. */
static __always_inline __u64 once_tag(__u64 head, __u32 len)
{
	return head ^ ((__u64)len << 48);
}

/* --once: remember a loopback packet emitted at egress, so that its arrival is not. */
static __always_inline void once_remember(const struct sk_buff *skb, __u32 len)
{
	const struct net_device *dev;
	__u64 head, *s;

	if (!once)
		return;
	dev = skb->dev;
	if (!dev || !(dev->flags & IFF_LOOPBACK))
		return;
	head = once_head(skb);
	s = once_slot_of(head);
	if (s)
		*s = once_tag(head, len);
}

/* --once, at the device: whether this arriving packet was emitted at egress; notes the answer
 * for the socket hooks that follow on this CPU. */
static __always_inline bool once_arrived(const struct sk_buff *skb)
{
	const struct net_device *dev;
	struct cpu_note *note;
	__u64 key = 0, *s;
	bool seen = false;

	if (!once)
		return false;
	note = cpu_note();
	dev = skb->dev;
	if (dev && (dev->flags & IFF_LOOPBACK)) {
		key = once_head(skb);
		s = once_slot_of(key);
		/* This buffer's slot (all but the length bits alike): used up either way. */
		if (s && *s && !((*s ^ key) << 16)) {
			seen = *s == once_tag(key, skb->len);
			*s = 0;
		}
	}
	if (note) {
		note->once_arriving = seen ? key : 0;
		note->once_arriving_skb = seen ? (__u64)skb : 0;
	}
	return seen;
}

/* --once, at a socket: whether the packet (or the one it is a clone of) was shown at egress. */
static __always_inline bool once_shown(const struct sk_buff *skb)
{
	struct cpu_note *note;

	if (!once)
		return false;
	note = cpu_note();
	return note && note->once_arriving &&
	       (note->once_arriving == once_head(skb) || note->once_arriving_skb == (__u64)skb);
}

#define PF_KTHREAD_ 0x00200000
/* THREAD_SIZE of x86-64 and arm64 without KASAN; a larger stack only makes in_own_call
 * say no more often (the owner then changes when the send returns, as before). */
#define TASK_STACK_SIZE 16384

/* Whether this program runs in a call of the current task's own (a send, a connect), not in
 * a kernel thread or in a softirq or interrupt that happens to run on the task. */
static __always_inline bool in_own_call(struct task_struct *task)
{
	const __u8 *raw = bpf_rdonly_cast(task, 0);
	__u64 mark = 0, sp = 0, base;
	void *at = &mark;

	if (task->flags & PF_KTHREAD_)
		return false;
	/* Interrupts and softirqs run on the CPU's own stack (x86-64, arm64), so this program's
	 * frame is on the task's stack only in the task's own context. The frame's address as a
	 * number: through a copy, since the verifier allows no arithmetic on a stack pointer. */
	if (bpf_probe_read_kernel(&sp, sizeof(sp), &at))
		return false;
	barrier_var(mark);
	base = *(const __u64 *)(raw + bpf_core_field_offset(struct task_struct, stack));
	return sp - base < TASK_STACK_SIZE;
}

/* Whether an outgoing packet of a socket leaves in a call of the current task's own. A TCP
 * socket transmits from softirqs and timers too, but never while a task holds its lock: they
 * leave the work to that task. (The stack alone is not enough for TCP: a receive processed in
 * a task's own call can send on another socket, as psql's FIN did in a PostgreSQL backend.) */
static __always_inline bool sent_by_current(struct task_struct *task, const struct sock *ksk,
					    __u32 cls)
{
	if (cls == PKT_SOCK_TCP && !ksk->sk_lock.owned)
		return false;
	return in_own_call(task);
}

/* Whether a TCP segment leaving in its task's own call is a use of the socket: it carries data
 * or is a connect's SYN. (A close's FIN, a reset, or a pure ACK sent by a task that is not the
 * owner, say a parent closing its copy last, leave the owner as it is.) */
static __always_inline bool tcp_segment_uses(struct __sk_buff *skb, const struct sk_buff *kskb)
{
	__u32 thoff = (__u32)kskb->transport_header - kskb->network_header;
	__u8 b[2];

	if (thoff > 0xffff || bpf_skb_load_bytes(skb, thoff + 12, b, sizeof(b)))
		return false;
	if ((b[1] & 0x12) == 0x02) /* SYN without ACK */
		return true;
	return skb->len > thoff + (b[0] >> 4) * 4;
}

/* An outgoing packet sent by a task that is not the socket's owner on record (st): the task
 * takes the socket now, before its data leaves, so the packets of its first send are its own
 * (owner_send sees the send only once it has returned, its segments gone under the previous
 * owner: a forked or setuid child's first reply, sshd's session child). The common case, the
 * owner again, reads the current task and compares. */
static __always_inline void egress_take(struct __sk_buff *skb, const struct sk_buff *kskb,
					struct sock *ksk, struct sk_state *st, __u32 cls)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (owner_is(st, task) && !st->listener)
		return;
	if (ksk->__sk_common.skc_family != AF_INET && ksk->__sk_common.skc_family != AF_INET6)
		return;
	if (!sent_by_current(task, ksk, cls))
		return;
	if (cls == PKT_SOCK_TCP && !tcp_segment_uses(skb, kskb))
		return;
	owner_take(ksk, st, st->listener);
}

/* The socket's sk_state, for reading only, found as bpf_sk_storage_get finds it (the socket's
 * storage, then its cache slot for sk_owner) but without the helper's call and checks, which
 * this kernel's return-thunk mitigations make dear (see the commit's A/B). NULL if the slot
 * holds no sk_state (none, or another map's there): bpf_sk_storage_get then decides. */
#define BPF_LOCAL_STORAGE_CACHE_SIZE_ 16 /* the kernel's, not in its BTF */

static __always_inline const struct sk_state *sk_state_peek(const struct sock *ksk)
{
	const struct bpf_local_storage_map *smap = (const void *)&sk_owner;
	const struct bpf_local_storage *ls;
	const __u8 *raw;
	__u64 sdata;

	/* A kernel whose storage internals differ takes the helper's way (libbpf resolves these
	 * checks when it loads the program; the verifier drops the rest as dead code). */
	if (!bpf_core_field_exists(struct sock, sk_bpf_storage) ||
	    !bpf_core_field_exists(struct bpf_local_storage, cache) ||
	    !bpf_core_field_exists(struct bpf_local_storage_map, cache_idx) ||
	    !bpf_core_field_exists(struct bpf_local_storage_data, smap) ||
	    !bpf_core_field_exists(struct bpf_local_storage_data, data))
		return NULL;
	ls = ksk->sk_bpf_storage;
	if (!ls)
		return NULL;
	raw = bpf_rdonly_cast(ls, 0);
	sdata = *(const __u64 *)(raw + bpf_core_field_offset(struct bpf_local_storage, cache) +
				 (smap->cache_idx & (BPF_LOCAL_STORAGE_CACHE_SIZE_ - 1)) * 8);
	if (!sdata)
		return NULL;
	raw = bpf_rdonly_cast((void *)sdata, 0);
	if (*(const __u64 *)(raw + bpf_core_field_offset(struct bpf_local_storage_data, smap)) !=
	    (__u64)smap)
		return NULL;
	return (const void *)(raw + bpf_core_field_offset(struct bpf_local_storage_data, data));
}

/* A socket packet of an untraced owner's: counted (if on a wanted interface and direction),
 * nothing else. */
static __always_inline int out_of_scope(bool wanted)
{
	if (wanted) {
		stat_inc(STAT_PACKETS);
		stat_inc(STAT_OUT_OF_SCOPE);
	}
	return 1;
}

static __always_inline int handle_skb(struct __sk_buff *skb, __u8 direction)
{
	struct pkt_owner *o = NULL, none = {};
	struct sk_state *st, *ost = NULL; /* ost: the socket state o is the owner of */
	const struct sk_state *peek;
	struct sk_buff *kskb;
	struct l3_info w;
	struct bpf_sock *sc, *sk = NULL; /* sc: the socket, sk: its full view (rare paths) */
	struct sock *ksk;
	__u32 l4_len, cls, netns = 0;
	__u8 flags = 0, sk_proto;
	bool wanted;
	int off;

	if (!packet_events)
		return 1;
	/* The socket read through the kernel's own type: bpf_sk_fullsock's check, without the
	 * helper's call (the bpf_sock view is made only on the rare paths that need it). */
	sc = skb->sk;
	kskb = bpf_cast_to_kern_ctx(skb);
	ksk = kskb->sk;
	if (!sc || !ksk || ((1 << ksk->__sk_common.skc_state) &
		     ((1 << TCP_TIME_WAIT) | (1 << TCP_NEW_SYN_RECV))))
		return 1;
	cls = sock_class(ksk->sk_type, ksk->sk_protocol);
	if (cls == PKT_SOCK_TCP && !(sock_protos & PKT_SOCK_TCP)) {
		/* TCP is not emitted, ICMP errors are: a connect's first SYN still publishes its
		 * owner, for the error that fails it (below for an emitted one). */
		if (icmp_errors && direction == PKT_EGRESS &&
		    ksk->__sk_common.skc_state == TCP_SYN_SENT) {
			st = bpf_sk_storage_get(&sk_owner, sc, 0, 0);
			if (st && !st->published && st->owner.traced && !st->listener)
				tcp_conn_publish(ksk, st, true);
		}
		return 1;
	}
	if (!(cls & sock_protos) && !(icmp_errors && cls == PKT_SOCK_UDP))
		return 1;
	if (direction == PKT_INGRESS && once_shown(kskb))
		return 1;
	wanted = dev_wanted(kskb->dev, direction);
	/* An unwanted packet still publishes a UDP or ping socket for its ICMP errors (below). */
	if (!wanted && !(direction == PKT_EGRESS && icmp_errors &&
			 (cls == PKT_SOCK_UDP || cls == PKT_SOCK_ICMP)))
		return 1;
	sk_proto = cls == PKT_SOCK_TCP ? IPPROTO_TCP : cls == PKT_SOCK_UDP ? IPPROTO_UDP :
		   cls == PKT_SOCK_ICMP ? IPPROTO_ICMP : IPPROTO_RAW;

	/* An out-of-scope socket's packet, its owner again: counted and gone, read without a
	 * helper call. */
	peek = sk_state_peek(ksk);
	if (peek && !peek->owner.traced && !peek->listener &&
	    (direction == PKT_INGRESS || owner_is(peek, bpf_get_current_task_btf())))
		return out_of_scope(wanted);
	st = bpf_sk_storage_get(&sk_owner, sc, 0, 0);
	if (st) {
		if (direction == PKT_EGRESS)
			egress_take(skb, kskb, ksk, st, cls);
		ost = st;
		/* The listener's own packets (handshakes) and a child still holding the record
		 * cloned from it: the owner is provisional until a task takes the connection. */
		if (st->listener)
			flags = PKT_F_HELD;
	} else {
		sk = bpf_sk_fullsock(sc);
		if (!sk)
			return 1;
		ost = owner_existing_take(sk);
		if (ost && cls == PKT_SOCK_TCP && sk->state == BPF_TCP_LISTEN)
			flags = PKT_F_HELD;
	}
	if (ost)
		o = &ost->owner;
	if (!o && cls == PKT_SOCK_TCP) {
		/* An MPTCP subflow, which the kernel created: its MPTCP socket's owner. */
		struct mptcp_sock *msk = sk ? bpf_skc_to_mptcp_sock(sk) : NULL;

		st = msk ? bpf_sk_storage_get(&sk_owner, msk, 0, 0) : NULL;
		if (st) {
			ost = st;
			o = &st->owner;
			if (st->listener)
				flags = PKT_F_HELD;
		}
	}
	/* An untraced owner's packet goes no further: no header is read (its ICMP errors would
	 * be out of scope too, so nothing is published for them either). */
	if (o && !o->traced && !(flags & PKT_F_HELD))
		return out_of_scope(wanted);
	if (direction == PKT_INGRESS && wanted) {
		/* Emitted at the device already (a connection between its full and its timewait
		 * socket)? A packet that would not be emitted needs no look: the device path resets
		 * the note at every received packet. */
		struct cpu_note *note = cpu_note();

		if (note && note->dev_emitted) {
			bool dup = note->dev_emitted == (__u64)kskb;

			note->dev_emitted = 0;
			if (dup)
				return 1;
		}
	}
	/* Seen once: a packet the device path emitted already is not counted again. */
	if (wanted)
		stat_inc(STAT_PACKETS);

	off = l3_walk(skb, &w);
	if (off < 0) {
		/* Emitted all the same, with the IP header: nothing on a traced socket is hidden. */
		if (wanted)
			stat_inc(STAT_NO_L4);
		flags |= PKT_F_NO_L4;
	}
	if (kskb->dev)
		netns = kskb->dev->nd_net.net->ns.inum;
	if (o && st && !st->published && direction == PKT_EGRESS && off >= 0 && icmp_errors)
		errors_publish(skb, ksk, st, &w, off, cls, netns);
	if (!wanted || !(cls & sock_protos))
		return 1; /* a UDP socket's packet, looked at only for its ICMP errors */
	if (!o && off >= 0 && cls == PKT_SOCK_TCP) {
		/* A kernel socket replying for a connection that has closed: its last owner. */
		struct pkt_conn c;

		if (kskb->dev && !conn_of_skb(skb, w.l3, off, direction, netns, &c)) {
			o = bpf_map_lookup_elem(&gone_conns, &c);
			if (!o)
				o = bpf_map_lookup_elem(&closed_conns, &c);
		}
	} else if (!o && off >= 0 && icmp_errors &&
		   (w.nh == IPPROTO_ICMP || w.nh == IPPROTO_ICMPV6_)) {
		/* The kernel's ICMP error about a packet it received: the sender's, if local. */
		__u8 b[ICMP_QUOTE_LEN] = {};
		__u32 n = skb->len > (__u32)off ? skb->len - off : 0;
		struct pkt_conn c;

		if (n > ICMP_QUOTE_LEN)
			n = ICMP_QUOTE_LEN;
		barrier_var(n);
		n &= 0x7f;
		if (n > ICMP_QUOTE_LEN)
			n = ICMP_QUOTE_LEN;
		if (n >= 8 && !bpf_skb_load_bytes(skb, off, b, n) &&
		    !icmp_quoted_conn(b, n, w.l3, netns, &c)) {
			o = icmp_quoted_owner(&c);
			flags |= PKT_F_ICMP_ERR;
			stat_inc(o ? STAT_ICMP_ERRORS : STAT_ICMP_NO_OWNER);
		}
	}
	if (!o) {
		stat_inc(STAT_NO_OWNER);
		if (scope_set())
			return 1;
		o = &none;
	} else if (!o->traced && !(flags & PKT_F_HELD)) {
		stat_inc(STAT_OUT_OF_SCOPE);
		return 1;
	}

	if (direction == PKT_EGRESS)
		once_remember(kskb, skb->len);
	l4_len = l4_header_len(skb, &w, off);
	/* Most headers fit the tiny record, most others the small one: less ring space and
	 * memory traffic per packet (each 64 bytes of record cost ~40 ns per run, measured). An
	 * extension-header chain takes the large one, with room for its types. */
	if (!snaplen && off >= 0 && off == w.ip_len && w.ip_len + l4_len <= PKT_HDR_TINY)
		return emit_skb(skb, ost, o, direction, &w, off, l4_len, flags, sk_proto, PKT_HDR_TINY,
				0);
	if (!w.count && w.ip_len + l4_len <= PKT_HDR_SMALL) {
		/* --snaplen: room for the payload after the headers, in the smallest of three sizes
		 * that holds it (a record reserving snaplen for a short payload fills the ring
		 * buffer, and wakes the reader, that much sooner); the verifier drops these
		 * branches when snaplen is 0. */
		if (snaplen && off >= 0) {
			__u32 pay = skb->len > off + l4_len ? skb->len - off - l4_len : 0;

			if (pay <= SNAP_ROOM_S && snaplen > SNAP_ROOM_S)
				return emit_skb(skb, ost, o, direction, &w, off, l4_len, flags, sk_proto,
						PKT_HDR_MAX, SNAP_ROOM_S);
			if (pay <= SNAP_ROOM_M && snaplen > SNAP_ROOM_M)
				return emit_skb(skb, ost, o, direction, &w, off, l4_len, flags, sk_proto,
						PKT_HDR_MAX, SNAP_ROOM_M);
			return emit_skb(skb, ost, o, direction, &w, off, l4_len, flags, sk_proto,
					PKT_HDR_MAX, snaplen);
		}
		return emit_skb(skb, ost, o, direction, &w, off, l4_len, flags, sk_proto,
				PKT_HDR_SMALL, 0);
	}
	return emit_skb(skb, ost, o, direction, &w, off, l4_len, flags, sk_proto, PKT_HDR_MAX, 0);
}

SEC("cgroup_skb/ingress")
int capture_ingress(struct __sk_buff *skb)
{
	return handle_skb(skb, PKT_INGRESS);
}

SEC("cgroup_skb/egress")
int capture_egress(struct __sk_buff *skb)
{
	return handle_skb(skb, PKT_EGRESS);
}

/* An outgoing packet the filter expression rejected (tail-called by the egress filter, only
 * when ICMP errors are tracked): nothing is emitted or counted, but its socket is published
 * for its ICMP errors all the same, as capture_egress would have: an expression may reject a
 * socket's own packets and still want its errors (`icmp`). */
SEC("cgroup_skb/egress")
int capture_egress_rejected(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	struct bpf_sock *sc = skb->sk, *sk;
	struct sock *ksk = kskb->sk;
	struct sk_state *st;
	struct l3_info w;
	__u32 cls;
	int off;

	if (!icmp_errors || !sc || !ksk || ((1 << ksk->__sk_common.skc_state) &
					    ((1 << TCP_TIME_WAIT) | (1 << TCP_NEW_SYN_RECV))))
		return 1;
	cls = sock_class(ksk->sk_type, ksk->sk_protocol);
	if (cls != PKT_SOCK_UDP && cls != PKT_SOCK_ICMP &&
	    !(cls == PKT_SOCK_TCP && ksk->__sk_common.skc_state == TCP_SYN_SENT))
		return 1;
	st = bpf_sk_storage_get(&sk_owner, sc, 0, 0);
	if (!st) {
		sk = bpf_sk_fullsock(sc);
		if (!sk)
			return 1;
		st = owner_existing_take(sk);
	}
	if (!st || st->published || st->listener || !st->owner.traced)
		return 1;
	off = l3_walk(skb, &w);
	if (off < 0)
		return 1;
	errors_publish(skb, ksk, st, &w, off, cls, kskb->dev ? kskb->dev->nd_net.net->ns.inum : 0);
	return 1;
}

/* The listener on c's local address and port, bound to it or to the wildcard address. */
static __always_inline struct pkt_owner *listener_of(const struct pkt_conn *c)
{
	struct pkt_conn k = *c;
	struct pkt_owner *o;

	__builtin_memset(k.raddr, 0, sizeof(k.raddr));
	k.rport = 0;
	o = bpf_map_lookup_elem(&listeners, &k);
	if (o)
		return o;
	__builtin_memset(k.laddr, 0, sizeof(k.laddr));
	o = bpf_map_lookup_elem(&listeners, &k);
	if (o || k.family == 6)
		return o;
	k.family = 6; /* a dual-stack listener on [::] */
	return bpf_map_lookup_elem(&listeners, &k);
}

/* An ICMP error arriving about a packet a local UDP or ping socket sent (or a closed TCP
 * connection): no socket hook sees it, so it is emitted here, as its owner's. l3p: the IP
 * header, ip_len long; the ICMP header follows. */
static __always_inline int dev_icmp_error(unsigned char *l3p, __u32 ip_len, __u8 l3,
					  __u32 pkt_len, struct net_device *dev)
{
	struct pkt_owner *o, none = {};
	struct pkt_wire *rec;
	__u8 b[ICMP_QUOTE_LEN] = {};
	struct pkt_conn c;
	__u32 n;

	ip_len &= 0x3f;
	if (ip_len < 20 || pkt_len < ip_len + 8)
		return 0;
	n = pkt_len - ip_len;
	if (n > ICMP_QUOTE_LEN)
		n = ICMP_QUOTE_LEN;
	barrier_var(n);
	n &= 0x7f;
	if (n > ICMP_QUOTE_LEN)
		n = ICMP_QUOTE_LEN;
	if (bpf_probe_read_kernel(b, n, l3p + ip_len) ||
	    icmp_quoted_conn(b, n, l3, dev->nd_net.net->ns.inum, &c))
		return 0;
	o = icmp_quoted_owner(&c);
	if (!o) {
		stat_inc(STAT_ICMP_NO_OWNER);
		if (scope_set())
			return 0;
		o = &none;
	} else if (!o->traced) {
		stat_inc(STAT_DEV_OUT_OF_SCOPE);
		return 0;
	} else {
		stat_inc(STAT_ICMP_ERRORS);
	}
	rec = record_open(NULL, o, PKT_INGRESS, l3, pkt_len, dev, PKT_F_DEVICE | PKT_F_ICMP_ERR,
			  PKT_HDR_SMALL, NULL);
	if (!rec)
		return 0;
	rec->sk_proto = IPPROTO_ICMP;
	rec->l4_proto = l3 == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6_;
	record_submit_kernel(rec, l3p, ip_len + 8);
	return 0;
}

/* Whether the selected events show a packet-socket frame of transport protocol p. */
static __always_inline bool injected_wanted(__u8 p)
{
	if (p == IPPROTO_TCP)
		return sock_protos & PKT_SOCK_TCP;
	if (p == IPPROTO_UDP || p == IPPROTO_UDPLITE)
		return sock_protos & PKT_SOCK_UDP;
	if (p == IPPROTO_ICMP || p == IPPROTO_ICMPV6_)
		return sock_protos & PKT_SOCK_ICMP;
	/* Any other protocol, or an IPv6 extension header: a raw socket's would be traced. */
	return sock_protos & PKT_SOCK_RAW;
}

/* A device record's protocols: a packet-socket frame has the class of socket it would have
 * had (record_open made it TCP's): UDP, ICMP, or raw for any other protocol. */
static __always_inline void dev_record_protos(struct pkt_wire *rec, __u8 l4p)
{
	if (l4p == IPPROTO_TCP)
		return;
	rec->sk_proto = l4p == IPPROTO_UDP || l4p == IPPROTO_UDPLITE ? IPPROTO_UDP :
			l4p == IPPROTO_ICMP || l4p == IPPROTO_ICMPV6_ ? IPPROTO_ICMP : IPPROTO_RAW;
	rec->l4_proto = l4p;
}

/* Packets no socket hook sees: those of timewait sockets and kernel replies for connections
 * that have closed (and IPv6 RSTs for no socket at all), seen where they meet the device. */
static __always_inline int handle_dev(struct sk_buff *skb, __u8 direction)
{
	unsigned char *head = skb->head, *l3p;
	struct net_device *dev = skb->dev;
	struct pkt_owner *o, none = {}, inj = {};
	struct pkt_wire *rec;
	struct pkt_conn c = {};
	__u32 pkt_len, len;
	bool injected = false;
	__u16 proto;
	__u16 ports[2];
	__u8 *tcp;
	int local = direction == PKT_EGRESS ? 0 : 1, off;
	__u8 l3, nh, l4p, flags = PKT_F_DEVICE;
	bool no_l4 = false;
	__u32 remembered;
	__u64 h;
	__u16 l3_off;

	if (!packet_events)
		return 0;
	if (direction == PKT_EGRESS) {
		struct sock *sk = skb->sk;

		if (sk && sk->__sk_common.skc_family == AF_PACKET_) {
			/* A frame a process wrote whole on a packet socket (scapy's sendp, masscan,
			 * nmap's --send-eth): no socket hook sees it, and its sender's own call
			 * queues it here, so the current task is its owner. */
			if (!in_own_call(bpf_get_current_task_btf()))
				return 0;
			injected = true;
		} else if (sk && sk->__sk_common.skc_state != TCP_TIME_WAIT) {
			/* A full socket's packets passed the egress socket hook already. A SYN starts
			 * a new connection on its addresses (a reused local port): the old one is
			 * history. */
			if (sk->__sk_common.skc_state == TCP_SYN_SENT) {
				conn_of_sock(sk, &c);
				conn_forget(&c);
			}
			return 0;
		}
	} else {
		/* A new packet: forget the last one, whose buffer may be reused for this one. */
		struct cpu_note *note = cpu_note();

		if (note)
			note->dev_emitted = 0;
	}
	if (!dev)
		return 0;
	/* --once: shown at egress already (the socket hooks skip it too). */
	if (direction == PKT_INGRESS && once_arrived(skb))
		return 0;
	/* Nothing remembered and no ICMP error looked for: an arriving packet has nothing to be
	 * looked up for (below, the first test made on its addresses). */
	if (direction == PKT_INGRESS && !icmp_errors && !conn_filter_any())
		return 0;
	/* At receive the network header is reset only after the tracepoint: data is at L3. */
	proto = skb->protocol;
	if (direction == PKT_INGRESS) {
		l3p = skb->data;
		l3_off = 0;
	} else if (injected) {
		/* The frame as its sender wrote it, from the link header on: Ethernet framing (lo,
		 * veth, Ethernet devices), its EtherType from the frame itself. */
		__u8 *f = bpf_rdonly_cast(skb->data, 0);

		if (dev->hard_header_len != ETH_HLEN_ || skb->len < ETH_HLEN_)
			return 0;
		proto = *(__u16 *)(f + 12);
		l3p = skb->data + ETH_HLEN_;
		l3_off = ETH_HLEN_;
	} else {
		l3p = head + skb->network_header;
		l3_off = skb->network_header - (__u16)(skb->data - head);
	}
	if (l3_off > skb->len)
		return 0;
	pkt_len = skb->len - l3_off;
	/* Header bytes are read in place (a read-only view of kernel memory whose loads cannot
	 * fault): every packet of every device passes here, and a copy helper per header costs
	 * more than the rest of the program. */
	if (proto == bpf_htons(ETH_P_IP)) {
		__u8 *b = bpf_rdonly_cast(l3p, 0);

		l4p = b[9];
		if ((b[6] << 8 | b[7]) & 0x1fff) {
			/* A later fragment: a packet-socket frame's is shown with its IP header, as
			 * a raw socket's is. */
			if (!injected)
				return 0;
			no_l4 = true;
		}
		if (l4p == IPPROTO_ICMP && direction == PKT_INGRESS && icmp_errors)
			return dev_wanted(dev, direction) ? dev_icmp_error(l3p, (b[0] & 0xf) * 4, 4, pkt_len, dev) : 0;
		if (injected ? !injected_wanted(l4p) :
			       (l4p != IPPROTO_TCP || !(sock_protos & PKT_SOCK_TCP)))
			return 0;
		l3 = 4;
		off = (b[0] & 0xf) * 4;
		__builtin_memcpy(c.laddr, &b[12 + local * 4], 4);
		__builtin_memcpy(c.raddr, &b[12 + !local * 4], 4);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		__u8 *b = bpf_rdonly_cast(l3p, 0);

		/* Kernel replies carry no extension headers: only the plain case is looked at. */
		if (b[6] == IPPROTO_ICMPV6_ && direction == PKT_INGRESS && icmp_errors)
			return dev_wanted(dev, direction) ? dev_icmp_error(l3p, 40, 6, pkt_len, dev) : 0;
		l4p = b[6];
		if (injected ? !injected_wanted(l4p) :
			       (l4p != IPPROTO_TCP || !(sock_protos & PKT_SOCK_TCP)))
			return 0;
		l3 = 6;
		off = 40;
		__builtin_memcpy(c.laddr, &b[8 + local * 16], 16);
		__builtin_memcpy(c.raddr, &b[8 + !local * 16], 16);
	} else {
		return 0;
	}
	if (off < 20)
		return 0;
	tcp = bpf_rdonly_cast(l3p + off, 0);
	__builtin_memcpy(ports, tcp, sizeof(ports));
	c.netns = dev->nd_net.net->ns.inum;
	c.family = l3;
	c.lport = bpf_ntohs(ports[local]);
	c.rport = bpf_ntohs(ports[!local]);
	nh = tcp[13]; /* flags */
	if (injected) {
		if (!dev_wanted(dev, direction))
			return 0;
		/* A protocol without ports, or behind IPv6 extension headers (not walked here): its
		 * IP header only, as a raw socket's that the kernel cannot read further. Only such
		 * a frame can be of another protocol than TCP here. */
		if (l4p != IPPROTO_TCP && l4p != IPPROTO_UDP && l4p != IPPROTO_UDPLITE &&
		    l4p != IPPROTO_ICMP && l4p != IPPROTO_ICMPV6_)
			no_l4 = true;
		owner_from_current(&inj);
		if (!inj.traced) {
			stat_inc(STAT_DEV_OUT_OF_SCOPE);
			return 0;
		}
		o = &inj;
		goto emit;
	}
	/* Neither table has the connection: an arriving packet is a live connection's (or one
	 * pktrace never saw close), which a socket hook sees if anything does. Only a reply the
	 * kernel sends for no socket is looked at further. */
	remembered = conn_maybe_remembered(&c, &h);
	if (!remembered && direction == PKT_INGRESS)
		return 0;
	if (direction == PKT_INGRESS && (nh & 0x12) == 0x02) {
		/* A new SYN on these addresses starts a new connection: the old one is history
		 * (remembered, as just checked). */
		conn_forget_in(&c, remembered, h);
		return 0;
	}
	if (!dev_wanted(dev, direction))
		return 0;
	o = remembered & MAY_GONE ? bpf_map_lookup_elem(&gone_conns, &c) : NULL;
	/* Not a connection its process closed first: one closed without timewait, whose packets
	 * meet no socket (or its LAST_ACK socket). */
	if (!o && (remembered & MAY_CLOSED) && !(nh & 0x02))
		o = bpf_map_lookup_elem(&closed_conns, &c);
	if (!o && direction == PKT_EGRESS && (nh & 0x12) == 0x12) {
		/* A SYN-ACK sent without a socket (SYN cookie): the listener's, held like the rest
		 * of the handshake until a task takes the connection. */
		o = listener_of(&c);
		if (!o)
			return 0;
		flags |= PKT_F_HELD;
	} else if (!o) {
		/* Only a RST the kernel sends for no socket at all, and only without a scope. */
		if (direction != PKT_EGRESS || !(nh & 0x04))
			return 0;
		if (scope_set()) {
			stat_inc(STAT_DEV_NO_OWNER);
			return 0;
		}
		o = &none;
	} else if (!o->traced && !(flags & PKT_F_HELD)) {
		stat_inc(STAT_DEV_OUT_OF_SCOPE);
		return 0;
	}
emit:
	/* TCP's header as its data offset says, 20 bytes at least (a data offset below 5 is the
	 * decoder's to report, with the ports); 8 bytes of the others'. */
	len = l4p != IPPROTO_TCP ? 8 : tcp[12] >> 4 < 5 ? 20 : (tcp[12] >> 4) * 4;
	len = no_l4 ? off : off + len;
	if (len > pkt_len)
		len = pkt_len;
	if (no_l4) {
		flags |= PKT_F_NO_L4;
		stat_inc(STAT_NO_L4);
	}
	if (direction == PKT_EGRESS)
		once_remember(skb, pkt_len);
	/* Timewait and reply headers (no extension headers, few options) fit the small record,
	 * most the tiny one, which goes in the fast ring as a socket hook's does. */
	if (len <= PKT_HDR_TINY) {
		/* Not record_submit_kernel with the room as an argument: clang merges the two
		 * calls and the verifier then sees the small room against the tiny record. */
		struct fast_slot fs;

		rec = record_open(NULL, o, direction, l3, pkt_len, dev, flags, PKT_HDR_TINY, &fs);
		if (!rec)
			goto lost;
		dev_record_protos(rec, l4p);
		barrier_var(len);
		len &= 0x7f;
		if (len > PKT_HDR_TINY)
			len = PKT_HDR_TINY;
		if (len < 1 || bpf_probe_read_kernel(rec->hdr, len, l3p))
			len = 0;
		if (fs.hdr)
			fast_commit(&fs, rec, len);
		else
			record_submit(rec, len);
		goto emitted;
	}
	rec = record_open(NULL, o, direction, l3, pkt_len, dev, flags, PKT_HDR_SMALL, NULL);
	if (!rec)
		goto lost;
	dev_record_protos(rec, l4p);
	record_submit_kernel(rec, l3p, len);
	goto emitted;
lost:
	/* Lost (counted): seen here, so also counted as seen, and not tried again by the socket
	 * hook (a full socket's packet), which would count it lost twice. */
	stat_inc(STAT_PACKETS);
emitted:
	if (direction == PKT_INGRESS) {
		struct cpu_note *note = cpu_note();

		if (note)
			note->dev_emitted = (__u64)skb;
	}
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(capture_dev_ingress, struct sk_buff *skb)
{
	return handle_dev(skb, PKT_INGRESS);
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(capture_dev_egress, struct sk_buff *skb)
{
	return handle_dev(skb, PKT_EGRESS);
}
