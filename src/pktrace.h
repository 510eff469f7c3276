/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The wire format between pktrace.bpf.c and user space: keep it small and fixed-width. */
#ifndef PKTRACE_H
#define PKTRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PKT_COMM_LEN 16
#define PKT_IFNAME_LEN 16
/* Room for the L3 and L4 headers: IPv4 60 + TCP 60, or IPv6 40 + extension headers + TCP 60. */
#define PKT_HDR_MAX 256
/* Records come in three sizes: hdr[] cut to PKT_HDR_TINY or PKT_HDR_SMALL bytes when the
 * headers fit (TINY: IPv4 or IPv6 and TCP with timestamps, no extension headers), or whole. */
#define PKT_HDR_TINY 80
#define PKT_HDR_SMALL 128
/* --snaplen: payload bytes a record can carry after its headers, at most; --snaplen 0 and
 * anything above mean this many bytes of the packet in all (headers included). */
#define PKT_SNAP_MAX 4096
/* IPv6 extension-header types listed in a record, at most (the count goes on to 255). */
#define PKT_EXT_TYPES 64

enum pkt_direction {
	PKT_INGRESS = 0,
	PKT_EGRESS = 1,
};

/* Who owns a socket; kept in socket-local storage and copied into each record. */
struct pkt_owner {
	__u32 pid;    /* thread-group id */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u8 traced;    /* owner matched the scope when the record was written */
	__u8 pad[3];
	__u32 pad0;
	__u64 cgroup_id;
	__u64 uts_key; /* the owner's UTS namespace and node name, key of the uts_names map */
	char comm[PKT_COMM_LEN];
};

enum pkt_record_kind {
	PKT_REC_PACKET = 0, /* a packet: hdr[] holds its headers (struct pkt_record; in the ring
			     * buffer a struct pkt_wire, which names its owner by id) */
	PKT_REC_CLAIM = 1,  /* a task took a passive connection: hdr[] holds a struct pkt_conn */
	PKT_REC_FLOW = 2,   /* a TCP connection began or ended: hdr[] holds a struct pkt_flow */
	PKT_REC_OWNER = 3,  /* an owner and interface name that packet records name by id
			     * (struct pkt_owner_def; ring buffer only) */
};

/* Bits of pkt_record.flags for packets. */
enum pkt_record_flag {
	PKT_F_HELD = 1 << 0,   /* passive connection not yet taken by a task: owner is provisional */
	PKT_F_DEVICE = 1 << 1, /* seen at the device, no socket hook (timewait, kernel replies) */
	PKT_F_NO_L4 = 1 << 2,  /* no transport header could be reached: hdr[] has the IP header only */
	PKT_F_ICMP_ERR = 1 << 3, /* an ICMP error of the kernel's, owned by the socket it quotes */
};

/* pkt_record.flags of a claim record: how the connection was taken. */
enum pkt_claim {
	PKT_CLAIM_ACCEPT = 1, /* accept() returned it: the acceptor, until someone uses it */
	PKT_CLAIM_USE = 2,    /* a task sent or received on it first: its owner from now on */
	PKT_CLAIM_CLOSED = 3, /* closed before anyone used it: held packets go to the acceptor */
};

/* pkt_record.flags of a flow record. */
enum pkt_flow_flag {
	PKT_FLOW_END = 1 << 0,        /* ended (TCP_CLOSE); else began (ESTABLISHED) */
	PKT_FLOW_PASSIVE = 1 << 1,    /* the peer initiated it (SYN_RECV -> ESTABLISHED) */
	PKT_FLOW_BEGIN_SEEN = 1 << 2, /* end: its begin was seen (duration_ns is valid) */
	PKT_FLOW_FIN_ACKED = 1 << 3,  /* end: the peer acknowledged our FIN (in bytes_acked) */
	PKT_FLOW_HELD = 1 << 4,       /* begin of a passive connection no task has taken yet: its
				       * owner is the listener's, provisional (as PKT_F_HELD) */
};

/* How a flow ended, as far as the kernel's socket tells (pkt_flow.close_reason). */
enum pkt_flow_close {
	PKT_CLOSE_UNKNOWN = 0,
	PKT_CLOSE_FIN = 1,          /* both FINs exchanged */
	PKT_CLOSE_RST_SENT = 2,     /* closed from an open state with no error: a reset went out */
	PKT_CLOSE_RST_RECEIVED = 3, /* sk_err ECONNRESET or EPIPE */
	PKT_CLOSE_ABORTED = 4,      /* sk_err ECONNABORTED (SOCK_DESTROY, tcp_abort) */
	PKT_CLOSE_TIMEOUT = 5,      /* sk_err ETIMEDOUT (retransmits or keepalives gave up) */
};

/* pkt_flow.closed_first */
enum pkt_flow_closer {
	PKT_CLOSER_NONE = 0,   /* no FIN either way before the close (a reset) */
	PKT_CLOSER_LOCAL = 1,  /* FIN_WAIT1: the local side sent its FIN first */
	PKT_CLOSER_REMOTE = 2, /* CLOSE_WAIT: the peer's FIN came first */
};

/* A connection as its local socket sees it; IPv4 addresses in the first 4 bytes. */
struct pkt_conn {
	__u32 netns; /* inode number of the network namespace */
	__u8 family; /* 4 or 6 */
	__u8 pad;
	__u16 lport; /* host byte order */
	__u16 rport;
	__u16 pad2;
	__u8 laddr[16];
	__u8 raddr[16];
};

/* A summary of the connections whose last owner the kernel side remembers (gone_conns and
 * closed_conns): one bit per connection hash, in two generations. A clear bit in both means
 * neither table has the connection, so the packets of live connections, which every received
 * packet is checked for at the device, pay no table lookup. User space starts a new generation
 * now and then, refills it from the tables and clears the old one, so bits of connections the
 * tables let go do not pile up. */
#define PKT_CONN_FILTER_BITS 20
#define PKT_CONN_FILTER_WORDS (1u << (PKT_CONN_FILTER_BITS - 6))
/* And a summary of the summary: a generation's bit r says some word of region r (of 32, 8 KiB
 * of the filter each) has a bit set. Both generations' fit one 8-byte load, in a page the
 * check reads anyway: a packet whose region is clear reads no line of the filter, whose pages
 * miss the TLB after every system call's entry here (PTI without PCID). */
#define PKT_CONN_FILTER_REGION_SHIFT (PKT_CONN_FILTER_BITS - 6 - 5)
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define PKT_CONN_HASH_KEYS 12 /* 32-bit words of a pkt_conn_hash_keyed key */

/* A connection's hash under the key k: pairs of words multiplied (NH, as in UMAC), six
 * independent multiplies instead of a chain of eleven, as every received packet of every
 * device pays for it. With a secret k, a collision cannot be made on purpose. */
static __always_inline __u64 pkt_conn_hash_keyed(const struct pkt_conn *c, const __u32 *k)
{
	/* Read as words: may_alias, as the connection is a struct of other types. */
	typedef __u32 __attribute__((may_alias)) word_t;
	const word_t *w = (const word_t *)c;
	__u64 h = 0;
	__u32 i;

	for (i = 0; i < sizeof(*c) / 4; i += 2) {
		__u32 b = i + 1 < sizeof(*c) / 4 ? w[i + 1] : 0;

		h += (__u64)(__u32)(w[i] + k[i]) * (__u32)(b + k[i + 1]);
	}
	h ^= h >> 32;
	return h * 0x9e3779b97f4a7c15ULL;
}

/* The connection's hash for the filter: the same function and key on both sides (a collision
 * there only costs a table lookup). */
static __always_inline __u64 pkt_conn_hash(const struct pkt_conn *c)
{
	static const __u32 k[PKT_CONN_HASH_KEYS] = {
		0x9747b28c, 0x5bd1e995, 0xc2b2ae35, 0x85ebca6b, 0x27d4eb2f, 0x165667b1,
		0xd3a2646c, 0xfd7046c5, 0xb55a4f09, 0x61c88647, 0x7feb352d, 0x846ca68b,
	};

	return pkt_conn_hash_keyed(c, k);
}

/* The connection's bit in a generation: its hash's top bits. */
static __always_inline __u32 pkt_conn_filter_bit(const struct pkt_conn *c)
{
	return (__u32)(pkt_conn_hash(c) >> (64 - PKT_CONN_FILTER_BITS));
}

/* A connection's bit for one table: the pair of bits at its hash, the even one for gone_conns
 * and the odd one for closed_conns, so that a packet is looked up only in the table that may
 * hold it (a table lookup at the device is two cold lines, about 0.5 us here). */
static __always_inline __u32 pkt_conn_filter_bit_in(const struct pkt_conn *c, int closed)
{
	return (pkt_conn_filter_bit(c) & ~1u) | (closed ? 1u : 0u);
}

/* The region of the filter's word w (its index in conn_filter), 0 to 31. */
static __always_inline __u32 pkt_conn_filter_region(__u32 w)
{
	return (w >> PKT_CONN_FILTER_REGION_SHIFT) & 31;
}

/* Where generation gen's 32 region marks sit in the 8-byte pair both sides update whole. */
static __always_inline __u32 pkt_conn_filter_half(__u32 gen)
{
	return 32 * (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? (gen & 1) : !(gen & 1));
}

/* A flow record's hdr[]: the connection and, at its end, tcp_sock's own counters. */
struct pkt_flow {
	struct pkt_conn conn;
	__u32 pad0;
	__u64 duration_ns;    /* end with PKT_FLOW_BEGIN_SEEN: since ESTABLISHED */
	__u64 bytes_acked;    /* payload bytes the peer acknowledged */
	__u64 bytes_received; /* payload bytes received in order */
	__u64 bytes_retrans;
	__u32 segs_out;       /* every segment sent, SYN, FIN and pure ACKs included */
	__u32 segs_in;
	__u32 data_segs_out;
	__u32 data_segs_in;
	__u32 total_retrans;
	__u32 srtt_us;        /* smoothed RTT, already shifted back from tp->srtt_us >> 3 */
	__u32 min_rtt_us;
	__u32 delivered_ce;
	__u8 close_reason;    /* enum pkt_flow_close */
	__u8 closed_first;    /* enum pkt_flow_closer */
	__u8 pad1[6];
};

/* One ring-buffer record per packet of a traced socket (see PKT_HDR_SMALL for its size;
 * --snaplen adds a third size, up to snap[]). */
struct pkt_record {
	__u64 ts_ns;    /* CLOCK_BOOTTIME */
	__u8 kind;      /* enum pkt_record_kind: at this offset in every record */
	__u8 flags;     /* enum pkt_record_flag, or enum pkt_claim for a claim */
	__u16 hdr_len;  /* bytes valid in hdr[] */
	__u32 pkt_len;  /* skb->len: the IP packet as the kernel holds it */
	struct pkt_owner owner;
	__u32 ifindex;
	__u32 netns;    /* network namespace of the socket or device */
	__u8 direction; /* enum pkt_direction */
	__u8 l3_proto;  /* 4 or 6 */
	__u16 ext_len;  /* IPv6: bytes of extension headers, left out of hdr[] */
	__u8 ext_count; /* IPv6: extension headers before the transport header (255: or more) */
	__u8 sk_proto;  /* the socket's class: IPPROTO_TCP, _UDP, _ICMP (ICMP and ICMPv6), or
			 * IPPROTO_RAW for raw sockets of any other protocol */
	__u8 l4_proto;  /* the transport protocol the headers lead to (valid without PKT_F_NO_L4) */
	__u8 pad2;
	char ifname[PKT_IFNAME_LEN];
	/*
	 * IPv4: the IP header with its options, then the transport header: TCP with its options,
	 * or the first 8 bytes of UDP, ICMP or ICMPv6 (none for other protocols).
	 * IPv6: the 40-byte fixed header as on the wire (its next-header field names the first
	 * extension header), then the transport header as for IPv4, then the types of the first
	 * min(ext_count, PKT_EXT_TYPES) extension headers in chain order. The extension headers
	 * themselves (ext_len bytes) are left out, so no chain can push TCP out of the record.
	 * PKT_F_NO_L4: the IP header (and the types) only.
	 */
	__u8 hdr[PKT_HDR_MAX];
	/* Only in records reserved with room for them (--snaplen): snap_len payload bytes, those
	 * that follow the headers in hdr[] on the wire. Smaller records end before snap_len. */
	__u16 snap_len;
	__u8 pad3[6];
	__u8 snap[PKT_SNAP_MAX];
};

/*
 * In the ring buffer a packet record names its owner and interface by the id of an owner
 * definition that came before it in the same CPU's ring buffer: sent once per socket and owner
 * (again when the socket's packets use another interface, or user space asks for it by raising
 * owner_floor), not in every record, which saves 72 of the tiny record's 184 bytes. User space
 * makes a struct pkt_record of each (pkt_wire_to_record) before anything else looks at it.
 */
struct pkt_owner_def {
	__u64 ts_ns;
	__u8 kind;      /* PKT_REC_OWNER */
	__u8 pad[3];
	__u32 ifindex;
	__u64 id;       /* > 0, never reused */
	struct pkt_owner owner;
	char ifname[PKT_IFNAME_LEN];
};

/* struct pkt_record without owner and ifname[]: owner_id instead. */
struct pkt_wire {
	__u64 ts_ns;
	__u8 kind;      /* PKT_REC_PACKET */
	__u8 flags;
	__u16 hdr_len;
	__u32 pkt_len;
	__u64 owner_id; /* its struct pkt_owner_def; 0: no owner known (none, an empty name) */
	__u32 ifindex;
	__u32 netns;
	__u8 direction;
	__u8 l3_proto;
	__u16 ext_len;
	__u8 ext_count;
	__u8 sk_proto;
	__u8 l4_proto;
	__u8 pad2;
	__u8 hdr[PKT_HDR_MAX]; /* as in struct pkt_record */
	__u16 snap_len;
	__u8 pad3[6];
	__u8 snap[PKT_SNAP_MAX];
};

/* Fast rings: one per CPU beside its BPF ring buffer, an element of an mmapable array, for
 * the tiny packet records only (most packets). A free slot is taken by compare-and-swap and
 * the record committed by its slot's first word: no lock, no interrupts masked, about half the
 * cost of a BPF ring buffer record here (make bench-ringcost). A slot is PKT_FAST_SLOT bytes,
 * a u64 header (the record's length, and PKT_FAST_OVERTAKEN; 0 while it is written, and again
 * once read) then the record; slots never wrap. A full fast ring sends the record to the BPF
 * ring buffer. */
#define PKT_FAST_SLOT 128
/* In a committed slot's header, beside the length: a record was reserved after this one before
 * it was committed, and may be stamped before it (a program that came in on top of this one). */
#define PKT_FAST_OVERTAKEN (1ULL << 63)
#define PKT_FAST_CTL 128 /* the control part before the slots */

struct pkt_fast_ctl {
	__u64 head; /* the writers' position: bytes reserved so far */
	__u64 pad0[7];
	__u64 tail; /* the reader's: bytes given back */
	__u64 pad1[7];
};

/* Socket classes the kernel side traces (bits of the sock_protos setting), from the events. */
enum pkt_sock_class {
	PKT_SOCK_TCP = 1 << 0,  /* TCP and MPTCP (raw TCP sockets too: the kernel's own) */
	PKT_SOCK_UDP = 1 << 1,  /* UDP and UDP-Lite, raw or not */
	PKT_SOCK_ICMP = 1 << 2, /* ICMP and ICMPv6: ping sockets, raw ones, the kernel's own */
	PKT_SOCK_RAW = 1 << 3,  /* raw sockets of any other protocol (IPPROTO_RAW: hping3) */
};

/* Counters kept per CPU by the kernel side, summed by user space. */
enum pkt_stat {
	STAT_PACKETS = 0,   /* packets of traced socket classes that passed a hook */
	STAT_EVENTS,        /* records submitted to the ring buffer */
	STAT_LOST_RINGBUF,  /* ring buffer full: record reserve failed */
	STAT_OUT_OF_SCOPE,  /* packets of untraced owners */
	STAT_NO_OWNER,      /* packets of sockets whose owner is unknown */
	STAT_HDR_TRUNCATED, /* headers longer than PKT_HDR_MAX: cut, then a decode error */
	STAT_NO_L4,         /* packets with no reachable transport header: emitted with
			     * PKT_F_NO_L4 (a non-first fragment, an unknown or endless chain) */
	STAT_ACCEPT_MOVED,  /* accepted sockets handed from the listener's owner to the acceptor */
	STAT_FOLLOW_FULL,   /* forked processes of a command not followed: scope table full */
	STAT_EXISTING_FULL, /* sockets older than pktrace not recorded: table full */
	STAT_EXISTING_MOVED, /* sockets older than pktrace given their first holder */
	STAT_HELD,          /* records of passive connections not yet taken (owner provisional) */
	STAT_CLAIMS,        /* claim records submitted (accept, first use, closed unused) */
	STAT_CLAIMS_LOST,   /* claim records the ring buffer had no room for */
	STAT_OWNER_CHANGED, /* sockets whose user changed (another process, thread, exec, setuid) */
	STAT_DEV_EVENTS,    /* records of packets seen only at the device (teardown, kernel RSTs,
			     * frames written on packet sockets) */
	STAT_DEV_OUT_OF_SCOPE, /* such packets of untraced last owners */
	STAT_DEV_NO_OWNER,  /* kernel RSTs for no known connection, not emitted under a scope */
	STAT_GONE_FULL,     /* closed connections not remembered: table full */
	STAT_FLOWS,         /* flow records submitted (begin and end) */
	STAT_FLOWS_LOST,    /* flow records the ring buffer had no room for */
	STAT_ICMP_ERRORS,   /* ICMP errors of the kernel's emitted for the socket they quote */
	STAT_ICMP_NO_OWNER, /* ICMP errors quoting no known socket, not emitted under a scope */
	STAT_FILTER_REJECTED, /* packets the filter expression rejected (its generated programs) */
	STAT_CLOSES_LATE,   /* traced connections' closes the kernel ran no state program for,
			     * handled at the process's next call on the socket or its close()
			     * (close_missed) */
	STAT_CLOSES_UNSEEN, /* such closes found too late: the socket connected again first (the
			     * old connection's addresses are gone), their flow ends lost */
	STAT__MAX,
};

/* One CPU's counters: the element of the stats map for that CPU. Cache-line sized, so no two
 * CPUs share a line. */
struct pkt_cpu_stats {
	__u64 v[STAT__MAX];
} __attribute__((aligned(64)));

#endif /* PKTRACE_H */
