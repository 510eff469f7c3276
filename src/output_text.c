// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Text printer: tcpdump's line (as `tcpdump -i any -nn -S` prints it) with the process in front. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>

#include "decode.h"
#include "events.h"
#include "output.h"
#include "output_fmt.h"

/* Column widths before tcpdump's own part; a wider value is absorbed by the next padding,
 * up to the direction (see put_front). */
enum {
	W_PROC = 25, /* comm (16 at most) [pid (7)] */
	W_IF = 5,    /* tcpdump's "%-5s " */
	W_DIR = 3,   /* tcpdump's "%-3s ": In, Out */
};

/*
 * The longest line: time 16, process 17 + 12 + padding 25, interface 17 + 5, direction 6, "IP6 "
 * and two endpoints of 51 with " > " and ": " (111), then TCP: flags 20, seq 27, ack 16, win 11,
 * urg 11, options 390 (see output_table.c), length 19, a reason 32: under 830.
 */
#define TEXT_LINE_MAX 1024

/* tcpdump -nn: a.b.c.d.port, and the IPv6 address without brackets: ::1.80. */
static void put_endpoint(struct line *l, int family, const uint8_t *addr, uint16_t port,
			 bool has_port)
{
	char a[INET6_ADDRSTRLEN];

	if (family == AF_INET)
		l->p += fmt_ipv4(l->p, addr);
	else if (inet_ntop(family, addr, a, sizeof(a)))
		line_str(l, a);
	else
		*l->p++ = '?';
	if (has_port) {
		*l->p++ = '.';
		line_u(l, port);
	}
}

static void put_addrs(struct line *l, int family, const uint8_t *src, uint16_t sport,
		      const uint8_t *dst, uint16_t dport, bool ports)
{
	line_str(l, family == AF_INET6 ? "IP6 " : "IP ");
	put_endpoint(l, family, src, sport, ports);
	line_lit(l, " > ");
	put_endpoint(l, family, dst, dport, ports);
	line_lit(l, ": ");
}

/* Time, process, interface and direction: the columns in front of tcpdump's part, each
 * written in place, then padded as line_col pads a left-aligned column. */
static void put_front(struct line *l, const struct pkt_event *e, const char *ifname,
		      const char *dir)
{
	size_t n, cols, dn;

	fmt_time(l->p, e->timestamp_ns);
	line_col_here(l, 15, 15, 15, true);
	n = sanitize_comm(l->p, e->proc.comm, strnlen(e->proc.comm, sizeof(e->proc.comm)), &cols);
	if (!n)
		l->p[n++] = '-', cols = 1;
	l->p += n;
	*l->p++ = '[';
	dn = fmt_u64(l->p, e->proc.pid);
	l->p += dn;
	*l->p++ = ']';
	line_col_here(l, 0, W_PROC, cols + dn + 2, true);
	n = sanitize_comm(l->p, ifname, strnlen(ifname, sizeof(e->ifname)), &cols);
	if (!n)
		l->p[n++] = '-', cols = 1;
	line_col_here(l, n, W_IF, cols, true);
	/* tcpdump's "%-5s %-3s ": a longer interface name pushes the direction, which keeps its
	 * own padding ("veth1a2b3c4 In  IP"). */
	l->debt = 0;
	line_col(l, dir, strlen(dir), W_DIR, strlen(dir), false, true);
}

/* The transport payload as tcpdump counts it: what follows the IP headers (0 if they lie). */
static uint32_t l4_length(const struct pkt_event *e)
{
	const struct pkt_headers *h = &e->hdr;
	uint32_t ip_hdr = h->family == AF_INET ? h->ihl * 4u : 40u + h->ext_len;
	uint32_t total = h->family == AF_INET ? h->ip_len : 40u + h->ip_len;

	/* A length field of 0 (IPv4 GSO over 64 KiB, IPv6 jumbograms): the packet's own length. */
	if (!h->ip_len)
		total = e->packet_len;
	return total > ip_hdr ? total - ip_hdr : 0;
}

static void put_tcp(struct line *l, const struct pkt_headers *h, uint32_t l4_len)
{
	uint32_t hlen = h->data_offset * 4u, len = l4_len > hlen ? l4_len - hlen : 0;
	char buf[16];

	line_lit(l, "Flags ");
	line_mem(l, buf, fmt_flags(buf, h->flags));
	if (len || (h->flags & (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST))) {
		line_lit(l, ", seq ");
		line_u(l, h->seq);
		if (len) {
			*l->p++ = ':';
			line_u(l, (uint32_t)(h->seq + len));
		}
	}
	if (h->flags & TCP_FLAG_ACK) {
		line_lit(l, ", ack ");
		line_u(l, h->ack);
	}
	line_lit(l, ", win ");
	line_u(l, h->window);
	if (h->flags & TCP_FLAG_URG) {
		line_lit(l, ", urg ");
		line_u(l, h->urgent);
	}
	if (h->opts.order_n || h->opts.malformed || h->opts.cut) {
		*l->p++ = ',';
		/* An MPTCP option tcpdump cannot read: it ends the line at its "[bad opt]". */
		if (line_tcp_opts(l, &h->opts, h->flags))
			return;
	}
	/* A header the capture cut (-r): tcpdump ends the line at its mark. */
	if (h->opts.cut)
		return;
	line_lit(l, ", length ");
	line_u(l, len);
}

/* tcpdump's names (print-icmp.c, print-icmp6.c) for what needs no quoted packet. */
static const char *icmp_name(uint8_t type, uint8_t code)
{
	static const char *const names[19] = {
		[0] = "echo reply", [3] = "unreachable", [4] = "source quench",
		[5] = "redirect", [8] = "echo request", [9] = "router advertisement",
		[10] = "router solicitation", [11] = "time exceeded in-transit",
		[12] = "parameter problem", [13] = "time stamp query", [14] = "time stamp reply",
		[15] = "information request", [16] = "information reply",
		[17] = "address mask request", [18] = "address mask reply",
	};

	/* tcpdump names the quoted packet in an unreachable ("10.0.0.1 udp port 53 unreachable"),
	 * which the record does not carry: its words around it only. */
	static const char *const unreach[16] = {
		"net unreachable", "host unreachable", "protocol unreachable", "port unreachable",
		"unreachable - need to frag", "unreachable - source route failed",
		"net unreachable - unknown", "host unreachable - unknown",
		"unreachable - source host isolated", "net unreachable - admin prohibited",
		"host unreachable - admin prohibited", "net unreachable - tos prohibited",
		"host unreachable - tos prohibited", "host unreachable - admin prohibited filter",
		"host unreachable - host precedence violation",
		"host unreachable - precedence cutoff",
	};

	if (type == 3 && code < 16)
		return unreach[code];
	if (type == 11 && code == 1)
		return "ip reassembly time exceeded";
	return type < 19 ? names[type] : NULL;
}

static const char *icmp6_name(uint8_t type)
{
	switch (type) {
	case 1: return "destination unreachable";
	case 2: return "packet too big";
	case 3: return "time exceeded in-transit";
	case 4: return "parameter problem";
	case 128: return "echo request";
	case 129: return "echo reply";
	case 130: return "multicast listener query";
	case 131: return "multicast listener report";
	case 132: return "multicast listener done";
	case 133: return "router solicitation";
	case 134: return "router advertisement";
	case 135: return "neighbor solicitation";
	case 136: return "neighbor advertisement";
	case 137: return "redirect";
	case 143: return "multicast listener report v2";
	default: return NULL;
	}
}

static void put_icmp(struct line *l, const struct pkt_headers *h, uint32_t l4_len)
{
	/* tcpdump's words before the quoted packet's address, which the record does not carry. */
	static const char *const unreach6[] = {
		"unreachable route", "unreachable prohibited", "beyond scope",
		"unreachable address", "unreachable port",
	};
	static const char *const param6[] = {
		"erroneous", "next header", "option", "incomplete header chain",
	};
	uint32_t word = (uint32_t)h->icmp_id << 16 | h->icmp_seq; /* bytes 4-7 */
	bool v6 = h->family == AF_INET6;
	const char *name = v6 ? icmp6_name(h->icmp_type) : icmp_name(h->icmp_type, h->icmp_code);
	bool echo = v6 ? h->icmp_type == 128 || h->icmp_type == 129
		       : h->icmp_type == 0 || h->icmp_type == 8;

	line_str(l, v6 ? "ICMP6, " : "ICMP ");
	if (name) {
		line_str(l, name);
	} else {
		line_str(l, v6 ? "unknown icmp6 type (" : "type-#");
		line_u(l, h->icmp_type);
		if (v6)
			*l->p++ = ')';
	}
	if (echo) {
		line_lit(l, ", id ");
		line_u(l, h->icmp_id);
		line_lit(l, ", seq ");
		line_u(l, h->icmp_seq);
	} else if (!v6 && (h->icmp_type == 13 || h->icmp_type == 14)) {
		line_lit(l, " id ");
		line_u(l, h->icmp_id);
		line_lit(l, " seq ");
		line_u(l, h->icmp_seq);
	} else if (!v6 && h->icmp_type == 3 && h->icmp_code == 4 && h->icmp_seq) {
		line_lit(l, " (mtu ");
		line_u(l, h->icmp_seq);
		*l->p++ = ')';
	} else if (v6 && h->icmp_type == 1) {
		line_lit(l, ", ");
		if (h->icmp_code < 5) {
			line_str(l, unreach6[h->icmp_code]);
		} else {
			line_lit(l, "unknown unreach code (");
			line_u(l, h->icmp_code);
			*l->p++ = ')';
		}
	} else if (v6 && h->icmp_type == 2) {
		line_lit(l, ", mtu ");
		line_u(l, word);
	} else if (v6 && h->icmp_type == 3 && h->icmp_code == 1) {
		line_lit(l, " (reassembly)");
	} else if (v6 && h->icmp_type == 4 && h->icmp_code < 4) {
		line_lit(l, ", ");
		line_str(l, param6[h->icmp_code]);
		line_lit(l, " - octet ");
		line_u(l, word);
	}
	line_lit(l, ", length ");
	line_u(l, l4_len);
}

static size_t format_text_flow(char *dst, size_t cap, const struct pkt_event *e)
{
	const struct pkt_flow_event *f = &e->flow;
	char line[TEXT_LINE_MAX], a[24], b[24], d[24];
	char *start = line_start(dst, cap, line, TEXT_LINE_MAX);
	struct line l = {.p = start};

	put_front(&l, e, "", f->end ? "FLOW-" : "FLOW+");
	put_addrs(&l, f->family, f->src_addr, f->src_port, f->dst_addr, f->dst_port, true);
	line_str(&l, f->outgoing ? "outgoing" : "incoming");
	if (f->end) {
		if (f->begin_seen)
			fmt_duration(d, sizeof(d), f->duration_ns);
		else
			memcpy(d, "?", 2);
		fmt_bytes(a, sizeof(a), f->bytes_sent);
		fmt_bytes(b, sizeof(b), f->bytes_received);
		l.p += snprintf(l.p, 200, ", dur %s, sent %s, recv %s, segs %u/%u, retrans %u", d, a,
				b, f->segs_sent, f->segs_received, f->retrans_segs);
		fmt_duration(d, sizeof(d), (uint64_t)f->srtt_us * 1000);
		l.p += snprintf(l.p, 64, ", srtt %s, %s", d, flow_close_reason_name(f->close_reason));
		if (f->closed_first)
			l.p += snprintf(l.p, 32, ", closed-first %s",
					flow_closer_name(f->closed_first));
	}
	*l.p++ = '\n';
	return line_end(dst, cap, start, &l);
}

size_t format_text(char *dst, size_t cap, const struct pkt_event *e)
{
	const struct pkt_headers *h = &e->hdr;
	char line[TEXT_LINE_MAX], *start = line_start(dst, cap, line, TEXT_LINE_MAX);
	struct line l = {.p = start};
	uint32_t l4_len;
	bool ports;

	if (e->event == EVENT_NET_FLOW_TCP_BEGIN || e->event == EVENT_NET_FLOW_TCP_END)
		return format_text_flow(dst, cap, e);
	put_front(&l, e, e->ifname, e->egress ? "Out" : "In");
	ports = pkt_ports_read(h);
	put_addrs(&l, h->family, h->src_addr, h->src_port, h->dst_addr, h->dst_port, ports);
	l4_len = l4_length(e);
	if (h->l4_error == DECODE_BAD_DATA_OFFSET && ports) {
		/* tcpdump's words, its length less the header's, unsigned as tcpdump's. */
		line_lit(&l, " tcp ");
		line_u(&l, l4_len - h->data_offset * 4u);
		line_lit(&l, " [bad hdr length ");
		line_u(&l, h->data_offset * 4u);
		line_lit(&l, " - too short, < 20]");
	} else if (h->l4_error) {
		const char *why = decode_strerror(h->l4_error);

		line_lit(&l, "ip-proto-");
		line_u(&l, h->protocol);
		line_lit(&l, ", length ");
		line_u(&l, l4_len);
		line_lit(&l, " (");
		line_mem(&l, why, strnlen(why, 28));
		*l.p++ = ')';
	} else if (h->protocol == IPPROTO_TCP) {
		put_tcp(&l, h, l4_len);
	} else if (h->protocol == IPPROTO_UDP || h->protocol == IPPROTO_UDPLITE) {
		line_str(&l, h->protocol == IPPROTO_UDP ? "UDP, length " : "UDPLite, length ");
		line_u(&l, h->udp_len >= 8 ? h->udp_len - 8u : 0);
	} else if (h->protocol == IPPROTO_ICMP || h->protocol == IPPROTO_ICMPV6) {
		put_icmp(&l, h, l4_len);
	} else {
		line_lit(&l, "ip-proto-");
		line_u(&l, h->protocol);
		line_lit(&l, ", length ");
		line_u(&l, l4_len);
	}
	*l.p++ = '\n';
	return line_end(dst, cap, start, &l);
}
