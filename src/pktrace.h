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
/* Records come in two sizes: hdr[] cut to PKT_HDR_SMALL bytes when the headers fit, or whole. */
#define PKT_HDR_SMALL 128

enum pkt_direction {
	PKT_INGRESS = 0,
	PKT_EGRESS = 1,
};

/* Who owns a socket; kept in socket-local storage and copied into each record. */
struct pkt_owner {
	__u64 cgroup_id;
	__u64 cookie; /* cookie of the socket the record was written for (0: not yet known) */
	__u32 pid;    /* thread-group id */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 uts_inum; /* UTS namespace of the owner, key of the uts_names map */
	__u8 traced;    /* owner matched the scope when the record was written */
	__u8 pad[3];
	char comm[PKT_COMM_LEN];
};

/* One ring-buffer record per packet of a traced socket (see PKT_HDR_SMALL for its size). */
struct pkt_record {
	__u64 ts_ns; /* CLOCK_BOOTTIME */
	struct pkt_owner owner;
	__u32 pkt_len; /* skb->len: the IP packet as the kernel holds it */
	__u32 ifindex;
	__u8 direction; /* enum pkt_direction */
	__u8 l3_proto;  /* 4 or 6 */
	__u16 hdr_len;  /* bytes valid in hdr[] */
	__u32 pad;
	char ifname[PKT_IFNAME_LEN];
	__u8 hdr[PKT_HDR_MAX]; /* L3 header, IPv6 extension headers, TCP header with options */
};

/* Counters kept per CPU by the kernel side, summed by user space. */
enum pkt_stat {
	STAT_PACKETS = 0,   /* TCP packets that passed a hook */
	STAT_EVENTS,        /* records submitted to the ring buffer */
	STAT_LOST_RINGBUF,  /* ring buffer full: record reserve failed */
	STAT_OUT_OF_SCOPE,  /* packets of untraced owners */
	STAT_NO_OWNER,      /* packets of sockets whose owner is unknown */
	STAT_HDR_TRUNCATED, /* headers longer than PKT_HDR_MAX: cut, then a decode error */
	STAT_NOT_TCP,       /* IP packets that were not TCP (or a non-first fragment) */
	STAT_ACCEPT_MOVED,  /* accepted sockets handed from the listener's owner to the acceptor */
	STAT_FOLLOW_FULL,   /* forked processes of a command not followed: scope table full */
	STAT_EXISTING_FULL, /* sockets older than pktrace not recorded: table full */
	STAT_EXISTING_MOVED, /* sockets older than pktrace given their first holder */
	STAT__MAX,
};

#endif /* PKTRACE_H */
