/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A decoded event (a packet or a flow): what the decoder produces and the printers consume. */
#ifndef PKTRACE_EVENT_H
#define PKTRACE_EVENT_H

#include <stdbool.h>
#include <stdint.h>

enum tcp_flag {
	TCP_FLAG_FIN = 1 << 0,
	TCP_FLAG_SYN = 1 << 1,
	TCP_FLAG_RST = 1 << 2,
	TCP_FLAG_PSH = 1 << 3,
	TCP_FLAG_ACK = 1 << 4,
	TCP_FLAG_URG = 1 << 5,
	TCP_FLAG_ECE = 1 << 6,
	TCP_FLAG_CWR = 1 << 7,
	TCP_FLAG_NS = 1 << 8,
};

/* IPv6 extension-header types an event lists, at most (as PKT_EXT_TYPES in pktrace.h). */
#define EVENT_EXT_TYPES 64
/* ext_count saturates here: 255 means 255 or more. */
#define EVENT_EXT_COUNT_MAX 255

/* TCP options that fit in the 40 bytes after the fixed header. */
#define TCP_OPTS_MAX_LEN 40
#define TCP_OPTS_SACK_MAX 4    /* 2 + 4 * 8 bytes */
#define TCP_OPTS_COOKIE_MAX 38 /* kind 34, length 40 */
#define TCP_OPTS_UNKNOWN_MAX 20 /* two bytes each */

/* TCP option kinds (IANA) the decoder knows; every other kind is listed as unknown. */
enum tcp_opt_kind {
	TCP_KIND_EOL = 0,
	TCP_KIND_NOP = 1,
	TCP_KIND_MSS = 2,
	TCP_KIND_WSCALE = 3,
	TCP_KIND_SACK_PERM = 4,
	TCP_KIND_SACK = 5,
	TCP_KIND_TS = 8,
	TCP_KIND_TFO = 34,
	TCP_KIND_EXP = 254, /* RFC 6994 experiments: TFO before kind 34, by its magic */
};

enum tcp_opt_bit {
	TCP_OPT_MSS = 1 << 0,
	TCP_OPT_WSCALE = 1 << 1,
	TCP_OPT_SACK_PERM = 1 << 2,
	TCP_OPT_SACK = 1 << 3,
	TCP_OPT_TS = 1 << 4,
	TCP_OPT_TFO = 1 << 5,
	TCP_OPT_EOL = 1 << 6, /* the walk ended at an end-of-list option */
};

/* The options decoded from one TCP header; a field is valid only when its bit is in present. */
struct tcp_opts {
	uint8_t present; /* enum tcp_opt_bit */
	/* Length below 2, past the header, wrong for its kind, or a repeated option: not used. */
	bool malformed;
	/* A capture file's snapshot length ended the header inside the options (-r only): the
	 * options before the cut are here; enum tcp_opts_cut says where it fell. */
	uint8_t cut;
	uint8_t cut_kind; /* TCP_CUT_IN_OPTION: the kind of the option cut */
	uint8_t wscale;
	uint8_t sack_n;
	uint16_t mss;
	uint8_t tfo_len; /* cookie bytes; 0 with TCP_OPT_TFO: a cookie request */
	bool tfo_exp;    /* TCP_OPT_TFO in its experimental form: kind 254, magic 0xf989 */
	uint8_t unknown_n;
	uint32_t ts_val;
	uint32_t ts_ecr;
	uint32_t sack[TCP_OPTS_SACK_MAX][2]; /* left, right edges as on the wire */
	uint8_t tfo_cookie[TCP_OPTS_COOKIE_MAX];
	struct {
		uint8_t kind;
		uint8_t len;
		uint8_t data; /* where its len - 2 data bytes start in unknown_data[] */
	} unknown[TCP_OPTS_UNKNOWN_MAX];
	uint8_t unknown_used; /* bytes of unknown_data[] used */
	uint8_t unknown_data[TCP_OPTS_MAX_LEN]; /* the unknown options' data, one after another */
	/*
	 * Kinds of the options used, in wire order (NOP and EOL too), for the table: TFO is 34 in
	 * either form, and any kind but the ones in enum tcp_opt_kind is the next of unknown[].
	 */
	uint8_t order_n;
	uint8_t order[TCP_OPTS_MAX_LEN];
	/* The options' bytes as on the wire, kept only for a malformed option or an unknown kind
	 * (raw_len 0 otherwise): text and table print those as tcpdump walks them. */
	uint8_t raw_len;
	uint8_t raw[TCP_OPTS_MAX_LEN];
};

enum tcp_opts_cut {
	TCP_CUT_NONE,
	TCP_CUT_AT_OPTION, /* before an option's kind and length bytes were both captured */
	TCP_CUT_IN_OPTION, /* inside an option's data (its kind and length captured) */
};

/* Whether an event shows its options: anything but padding, a malformed option or a cut. */
static inline bool tcp_opts_shown(const struct tcp_opts *o)
{
	return (o->present & ~TCP_OPT_EOL) || o->unknown_n || o->malformed || o->cut;
}

/*
 * Fields of the IP and transport headers, in host byte order, raw as on the wire. When l4_error
 * is not 0 no transport header could be read: the event still names the addresses, the IP
 * header and the chain, and every transport field is 0, but the ports and data offset of a
 * whole 20-byte TCP header whose data offset is below 5 (pkt_ports_read).
 */
struct pkt_headers {
	int family; /* AF_INET or AF_INET6 */
	uint8_t src_addr[16];
	uint8_t dst_addr[16];
	/* The transport protocol: what follows the IP headers (IPPROTO_RAW, 255: unknown) */
	uint8_t protocol;
	uint8_t l4_error;  /* 0, or the enum decode_error (positive) why transport fields are missing */
	uint8_t ext_count; /* IPv6 extension headers before the transport header (255: or more) */
	uint8_t ext_types_n; /* types listed in ext_types: min(ext_count, EVENT_EXT_TYPES) or fewer */
	uint32_t ext_len;  /* total bytes of those extension headers */
	uint8_t ext_types[EVENT_EXT_TYPES]; /* their next-header values, in chain order */

	/* The IP header. */
	uint8_t ip_version;
	uint8_t ihl;         /* IPv4: header length in 32-bit words */
	uint8_t tos;         /* IPv4 type of service, IPv6 traffic class */
	uint8_t ip_flags;    /* IPv4: the three flag bits (4 reserved, 2 DF, 1 MF) */
	uint16_t ip_len;     /* IPv4 total length, IPv6 payload length */
	uint16_t ip_id;      /* IPv4 */
	uint16_t frag_off;   /* IPv4: fragment offset in 8-byte units */
	uint8_t ttl;         /* IPv4 TTL, IPv6 hop limit */
	uint8_t next_header; /* IPv4 protocol; IPv6: the fixed header's next header */
	uint16_t ip_checksum; /* IPv4 */
	uint32_t flow_label;  /* IPv6 */

	/* TCP and UDP */
	uint16_t src_port;
	uint16_t dst_port;
	uint16_t checksum;   /* the transport header's: TCP, UDP, ICMP or ICMPv6 */
	uint16_t udp_len;    /* UDP length field */
	/* ICMP and ICMPv6 */
	uint8_t icmp_type;
	uint8_t icmp_code;
	uint16_t icmp_id;    /* echo request and reply: identifier and sequence (else the raw */
	uint16_t icmp_seq;   /* bytes 4-7 of the header) */
	/* TCP */
	uint32_t seq;
	uint32_t ack;
	uint8_t data_offset; /* in 32-bit words */
	uint16_t flags;      /* enum tcp_flag bits */
	uint16_t window;
	uint16_t urgent;
	struct tcp_opts opts; /* all 0 without TCP fields or options */
};

/* The process that owns the packet's socket. */
struct pkt_process {
	uint32_t pid;
	uint32_t tid;
	uint32_t ppid;
	uint32_t uid;
	uint64_t cgroup_id;
	char comm[17];
	const char *hostname;     /* never NULL */
	const char *container_id; /* never NULL; "" for host processes */
};

/* How a flow ended (as enum pkt_flow_close). */
enum flow_close_reason {
	FLOW_CLOSE_UNKNOWN = 0,
	FLOW_CLOSE_FIN,
	FLOW_CLOSE_RST_SENT,
	FLOW_CLOSE_RST_RECEIVED,
	FLOW_CLOSE_ABORTED,
	FLOW_CLOSE_TIMEOUT,
};

/* Who sent the first FIN (as enum pkt_flow_closer). */
enum flow_closer {
	FLOW_CLOSER_NONE = 0,
	FLOW_CLOSER_LOCAL,
	FLOW_CLOSER_REMOTE,
};

/* A net_flow_tcp_begin or _end event; src is the initiator, the counters the local socket's. */
struct pkt_flow_event {
	bool end;
	bool outgoing;   /* the local side initiated it (active open) */
	bool begin_seen; /* end: the begin was seen, duration_ns is valid */
	int family;      /* AF_INET or AF_INET6 */
	uint8_t src_addr[16];
	uint8_t dst_addr[16];
	uint16_t src_port;
	uint16_t dst_port;
	uint64_t duration_ns;
	uint64_t bytes_sent;
	uint64_t bytes_received;
	uint64_t retrans_bytes;
	uint32_t segs_sent;
	uint32_t segs_received;
	uint32_t data_segs_sent;
	uint32_t data_segs_received;
	uint32_t retrans_segs;
	uint32_t srtt_us;
	uint32_t min_rtt_us;
	uint32_t delivered_ce;
	uint8_t close_reason; /* enum flow_close_reason */
	uint8_t closed_first; /* enum flow_closer */
};

struct pkt_event {
	int event;             /* enum event_id: which of the union's parts is valid */
	uint64_t timestamp_ns; /* wall clock, nanoseconds since the epoch */
	struct pkt_process proc;
	char ifname[17];
	bool egress;
	uint32_t packet_len;
	uint8_t sk_proto;         /* packet events: the socket's class (pktrace.h, pkt_record) */
	struct pkt_headers hdr;   /* packet events */
	struct pkt_flow_event flow; /* flow events */
};

#endif /* PKTRACE_EVENT_H */
