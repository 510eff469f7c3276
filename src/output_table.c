// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Table printer: one fixed-column line per event, addresses and flags as tcpdump prints them. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "decode.h"
#include "events.h"
#include "output.h"
#include "output_fmt.h"

/* Column widths; a longer value widens its column for that line and never gets cut. */
enum {
	W_TIME = 15, /* HH:MM:SS.uuuuuu */
	W_COMM = 16, /* TASK_COMM_LEN - 1, plus one spare */
	W_PID = 7,   /* pid_max is at most 4194304 */
	W_DIR = 3,   /* "in" / "out" */
	W_ADDR = 21, /* 255.255.255.255.65535; IPv6 widens */
	W_FLAGS = 6, /* [S.E] and [SEW] fit; rarer combinations widen */
	W_SEQ = 10,  /* 4294967295 */
	W_WIN = 5,   /* 65535 */
	W_LEN = 5,   /* GSO packets may widen */
};

/*
 * A line is built unchecked, in dst when it has room for the longest line, else in a local buffer
 * copied out if it fits: one bounds check per line. The longest line: 197 bytes of values (time
 * 15, comm 17, pid 10, dir 3, two endpoints of 53, flags 11, seq and ack 10, window 5, length 10),
 * at most 119 of padding (the sum of the widths), 10 separators and the newline: 327; then the
 * chain note (" ext:255+/4294967295B", 21): 348. A line without TCP fields is shorter: its ports,
 * seq, ack and window go, and its reason (" (" + at most 28 + ")") is less than they took. Then
 * the options (line_tcp_opts): " options [" and "]" (11), at most 9.25 columns per option byte
 * (",mptcp 4 capable Unknown Version (15)" 37 for 4 bytes: 369 for 40 bytes, the first without
 * its comma; every other form takes fewer: ",tcp-ao (invalid)" 17 for 2, ",mptcp 3 prio
 * non-backup" 24 for 3, ",unknown-255" 12 for 2, one ",tfo  cookiereq" 15 for 2, and the forms
 * of tcpdump's walk of malformed ones, ",sackOK[len 255]" 16 for 2 at most) and a last
 * "[bad opt]" (10 more than the byte it ends at takes): 390, so 738 in all. The other packet
 * lines are shorter: the same first six columns (153 of values), a marker (5), a detail of at most
 * 46 bytes ("DestinationUnreachable(SrcAddressFailedPolicy)", "EchoRequest(Code: 255) id 65535 seq
 * 65535", "IPv6Destination ttl 255 id 65535"), the length, the chain note, then at most 57 bytes
 * of IP fields (" tos 0xff flags [rsvdDF+] offset 65528 length 65535") or the reason (31).
 */
#define TABLE_LINE_MAX 768


/*
 * tcpdump style: a.b.c.d.port for IPv4, [v6]:port for IPv6 (its own form needs no brackets);
 * the address alone when there is no port (no TCP header was read).
 */
static size_t fmt_endpoint(char *buf, int family, const uint8_t *addr, uint16_t port,
			   bool has_port)
{
	size_t n = 0;

	if (family == AF_INET6 && has_port)
		buf[n++] = '[';
	if (family == AF_INET)
		n += fmt_ipv4(buf + n, addr);
	else if (inet_ntop(family, addr, buf + n, INET6_ADDRSTRLEN))
		n += strlen(buf + n);
	else
		buf[n++] = '?';
	if (!has_port)
		return n;
	if (family == AF_INET6)
		buf[n++] = ']';
	buf[n++] = family == AF_INET6 ? ':' : '.';
	return n + fmt_u64(buf + n, port);
}

size_t format_table_header(char *dst, size_t cap)
{
	char line[TABLE_LINE_MAX], *start = line_start(dst, cap, line, TABLE_LINE_MAX);
	struct line l = {.p = start};

#define HDR(s, w, right, sep) line_col(&l, s, sizeof(s) - 1, w, sizeof(s) - 1, right, sep)
	HDR("TIME", W_TIME, false, true);
	HDR("COMM", W_COMM, false, true);
	HDR("PID", W_PID, true, true);
	HDR("DIR", W_DIR, false, true);
	HDR("SOURCE", W_ADDR, false, true);
	HDR("DESTINATION", W_ADDR, false, true);
	HDR("FLAGS", W_FLAGS, false, true);
	HDR("SEQ", W_SEQ, true, true);
	HDR("ACK", W_SEQ, true, true);
	HDR("WIN", W_WIN, true, true);
	HDR("LEN", W_LEN, true, false);
#undef HDR
	*l.p++ = '\n';
	return line_end(dst, cap, start, &l);
}


/*
 * A flow line: FLOW+ (begin) or FLOW- (end) in the direction column, initiator > responder,
 * then its direction and, at the end, the summary in human units. Under TABLE_LINE_MAX: the
 * columns before the summary take at most 160 bytes; each snprintf below has room for its
 * longest output (104, 27 and 20 bytes, all values at their maximum: see the flow golden file).
 */
static size_t format_table_flow(char *dst, size_t cap, const struct pkt_event *e)
{
	const struct pkt_flow_event *f = &e->flow;
	char line[TABLE_LINE_MAX], *start = line_start(dst, cap, line, TABLE_LINE_MAX);
	struct line l = {.p = start};
	char buf[64], a[24], b[24], d[24];
	size_t n, cols;

	fmt_time(l.p, e->timestamp_ns);
	line_col_here(&l, 15, W_TIME, 15, true);
	n = sanitize_comm(l.p, e->proc.comm, strnlen(e->proc.comm, sizeof(e->proc.comm)), &cols);
	line_col_here(&l, n, W_COMM, cols, true);
	line_num(&l, e->proc.pid, W_PID, true);
	line_col(&l, f->end ? "FLOW-" : "FLOW+", 5, W_DIR, 5, false, true);
	n = fmt_endpoint(buf, f->family, f->src_addr, f->src_port, true);
	line_col(&l, buf, n, W_ADDR, n, false, true);
	n = fmt_endpoint(buf, f->family, f->dst_addr, f->dst_port, true);
	line_col(&l, buf, n, W_ADDR, n, false, false);
	line_str(&l, f->outgoing ? " outgoing" : " incoming");
	if (f->end) {
		if (f->begin_seen) {
			fmt_duration(d, sizeof(d), f->duration_ns);
		} else {
			memcpy(d, "?", 2);
		}
		fmt_bytes(a, sizeof(a), f->bytes_sent);
		fmt_bytes(b, sizeof(b), f->bytes_received);
		l.p += snprintf(l.p, 200, " dur %s sent %s recv %s segs %u/%u retrans %u", d, a, b,
				f->segs_sent, f->segs_received, f->retrans_segs);
		fmt_duration(d, sizeof(d), (uint64_t)f->srtt_us * 1000);
		l.p += snprintf(l.p, 64, " srtt %s %s", d, flow_close_reason_name(f->close_reason));
		if (f->closed_first)
			l.p += snprintf(l.p, 32, " closed-first %s", flow_closer_name(f->closed_first));
	}
	*l.p++ = '\n';
	return line_end(dst, cap, start, &l);
}

/* TIME, COMM, PID and DIR: what the two events of a loopback packet do not share. */
static void put_packet_who(struct line *l, const struct pkt_event *e)
{
	size_t n, cols;

	fmt_time(l->p, e->timestamp_ns);
	line_col_here(l, 15, W_TIME, 15, true);
	n = sanitize_comm(l->p, e->proc.comm, strnlen(e->proc.comm, sizeof(e->proc.comm)), &cols);
	line_col_here(l, n, W_COMM, cols, true);
	line_num(l, e->proc.pid, W_PID, true);
	if (e->egress)
		line_col(l, "out", 3, W_DIR, 3, false, true);
	else
		line_col(l, "in", 2, W_DIR, 2, false, true);
}

/* SOURCE and DESTINATION. */
static void put_endpoints(struct line *l, const struct pkt_headers *h, bool has_port)
{
	/* [v6 address]:port at most: 1 + 45 + 2 + 5. */
	char buf[64];
	size_t n;

	n = fmt_endpoint(buf, h->family, h->src_addr, h->src_port, has_port);
	line_col(l, buf, n, W_ADDR, n, false, true);
	n = fmt_endpoint(buf, h->family, h->dst_addr, h->dst_port, has_port);
	line_col(l, buf, n, W_ADDR, n, false, true);
}

/* The columns every packet line starts with: time, comm, pid, direction, source, destination. */
static void put_packet_prefix(struct line *l, const struct pkt_event *e, bool has_port)
{
	put_packet_who(l, e);
	put_endpoints(l, &e->hdr, has_port);
}

/* The IPv6 chain, compactly: headers (255+ when the kernel stopped counting) and bytes. */
static void put_ext_chain(struct line *l, const struct pkt_headers *h)
{
	if (!h->ext_count)
		return;
	line_mem(l, " ext:", 5);
	line_u(l, h->ext_count);
	if (h->ext_count >= EVENT_EXT_COUNT_MAX)
		*l->p++ = '+';
	*l->p++ = '/';
	line_u(l, h->ext_len);
	*l->p++ = 'B';
}

/* Why the transport header is missing, in parentheses (at most 28 bytes of it). */
static void put_reason(struct line *l, const struct pkt_headers *h)
{
	const char *why = decode_strerror(h->l4_error);

	*l->p++ = ' ';
	*l->p++ = '(';
	line_mem(l, why, strnlen(why, 28));
	*l->p++ = ')';
}

static void put_hex2(struct line *l, uint8_t v)
{
	static const char hex[] = "0123456789abcdef";

	line_mem(l, " 0x", 3);
	*l->p++ = hex[v >> 4];
	*l->p++ = hex[v & 0xf];
}

/* The width the SEQ, ACK and WIN columns span: the other packet lines' detail column. */
#define W_DETAIL (W_SEQ + 1 + W_SEQ + 1 + W_WIN)

static bool is_echo(const struct pkt_headers *h)
{
	if (h->family == AF_INET6)
		return h->icmp_type == 128 || h->icmp_type == 129;
	return h->icmp_type == 0 || h->icmp_type == 8;
}

/* The protocol after the IP headers by name; "?" where a chain hid it (IPPROTO_RAW). */
static const char *ip_proto_name(const struct pkt_headers *h, char *num)
{
	return h->protocol == IPPROTO_RAW ? "?" : fmt_ip_proto(h->protocol, num);
}

/*
 * The detail column of a UDP, ICMP or IP line, into buf (at least 96 bytes): UDP's length; the
 * ICMP type and code by name, with the echo id and sequence; the protocol, TTL (hop limit) and,
 * for IPv4, the id. Returns its length.
 */
static size_t fmt_detail(char *buf, const struct pkt_event *e)
{
	const struct pkt_headers *h = &e->hdr;
	char num[4];
	size_t n;

	switch (e->event) {
	case EVENT_NET_PACKET_UDP:
		return (size_t)snprintf(buf, 96, "length %u", h->udp_len);
	case EVENT_NET_PACKET_ICMP:
	case EVENT_NET_PACKET_ICMPV6:
		n = fmt_icmp_typecode(buf, h->family, h->icmp_type, h->icmp_code);
		if (is_echo(h))
			n += (size_t)snprintf(buf + n, 32, " id %u seq %u", h->icmp_id, h->icmp_seq);
		return n;
	case EVENT_NET_PACKET_IPV6:
		return (size_t)snprintf(buf, 96, "%s hlim %u", ip_proto_name(h, num), h->ttl);
	default:
		return (size_t)snprintf(buf, 96, "%s ttl %u id %u", ip_proto_name(h, num), h->ttl,
					h->ip_id);
	}
}

/* The rest of the IP header after the chain: tcpdump's names for its fields. */
static void put_ip_fields(struct line *l, const struct pkt_headers *h)
{
	if (h->family == AF_INET6) {
		line_lit(l, " tclass");
		put_hex2(l, h->tos);
		l->p += snprintf(l->p, 24, " flowlabel 0x%05x", h->flow_label & 0xfffff);
	} else {
		line_lit(l, " tos");
		put_hex2(l, h->tos);
		/* tcpdump's flags: reserved, DF, and + for more fragments. */
		if (h->ip_flags & 7) {
			line_lit(l, " flags [");
			if (h->ip_flags & 4)
				line_lit(l, "rsvd");
			if (h->ip_flags & 2)
				line_lit(l, "DF");
			if (h->ip_flags & 1)
				*l->p++ = '+';
			*l->p++ = ']';
		}
		if (h->frag_off) {
			line_lit(l, " offset ");
			line_u(l, (uint32_t)h->frag_off * 8);
		}
	}
	line_lit(l, " length ");
	line_u(l, h->ip_len);
}

/*
 * A UDP, ICMP, ICMPv6, IPv4 or IPv6 line: the TCP line's first columns, a marker in the FLAGS
 * column, the detail (fmt_detail) across the SEQ, ACK and WIN columns, the length, then the
 * chain and, for the IP events, the rest of the IP header; a transport event without its header
 * a dash for the detail and the reason.
 */
static size_t format_table_proto(char *dst, size_t cap, const struct pkt_event *e)
{
	static const char *const marks[EVENT__COUNT] = {
		[EVENT_NET_PACKET_UDP] = "udp",   [EVENT_NET_PACKET_ICMP] = "icmp",
		[EVENT_NET_PACKET_ICMPV6] = "icmp6", [EVENT_NET_PACKET_IPV4] = "ip",
		[EVENT_NET_PACKET_IPV6] = "ip6",
	};
	const struct pkt_headers *h = &e->hdr;
	bool ip = e->event == EVENT_NET_PACKET_IPV4 || e->event == EVENT_NET_PACKET_IPV6;
	bool ports = pkt_ports_read(h);
	bool missing = h->l4_error && !ip;
	char line[TABLE_LINE_MAX], *start = line_start(dst, cap, line, TABLE_LINE_MAX);
	struct line l = {.p = start};
	const char *mark = marks[e->event];
	char buf[96];
	size_t n;

	put_packet_prefix(&l, e, ports && e->event != EVENT_NET_PACKET_ICMP &&
					 e->event != EVENT_NET_PACKET_ICMPV6);
	line_col(&l, mark, strlen(mark), W_FLAGS, strlen(mark), false, true);
	if (missing) {
		line_col(&l, "-", 1, W_DETAIL, 1, false, true);
	} else {
		n = fmt_detail(buf, e);
		line_col(&l, buf, n, W_DETAIL, n, false, true);
	}
	line_num(&l, e->packet_len, W_LEN, false);
	put_ext_chain(&l, h);
	if (ip)
		put_ip_fields(&l, h);
	if (missing)
		put_reason(&l, h);
	*l.p++ = '\n';
	return line_end(dst, cap, start, &l);
}

size_t format_table(char *dst, size_t cap, const struct pkt_event *e)
{
	const struct pkt_headers *h = &e->hdr;
	char line[TABLE_LINE_MAX], *start = line_start(dst, cap, line, TABLE_LINE_MAX);
	struct line l = {.p = start};
	char buf[64];
	size_t n;

	switch (e->event) {
	case EVENT_NET_PACKET_TCP:
		break;
	case EVENT_NET_FLOW_TCP_BEGIN:
	case EVENT_NET_FLOW_TCP_END:
		return format_table_flow(dst, cap, e);
	case EVENT_NET_PACKET_UDP:
	case EVENT_NET_PACKET_ICMP:
	case EVENT_NET_PACKET_ICMPV6:
	case EVENT_NET_PACKET_IPV4:
	case EVENT_NET_PACKET_IPV6:
		return format_table_proto(dst, cap, e);
	default:
		return 0;
	}
	/* The rest of the line kept per packet (pkt_text_get), keyed also by the padding the
	 * columns so far still owe. */
	static _Thread_local struct pkt_text_cache rest_cache;
	struct pkt_text_key key;
	const struct pkt_text *t;
	bool keyed;
	char *rest;

	put_packet_who(&l, e);
	keyed = pkt_text_key_of(&rest_cache, e, l.debt, &key);
	if (keyed && (t = pkt_text_get(&rest_cache, &key)) != NULL) {
		line_mem(&l, t->text, t->len_a);
		return line_end(dst, cap, start, &l);
	}
	rest = l.p;
	put_endpoints(&l, h, pkt_ports_read(h));
	if (h->l4_error) {
		/* No TCP header: tcpdump's [?] for the flags, a dash for each missing number. */
		line_col(&l, "[?]", 3, W_FLAGS, 3, false, true);
		line_col(&l, "-", 1, W_SEQ, 1, true, true);
		line_col(&l, "-", 1, W_SEQ, 1, true, true);
		line_col(&l, "-", 1, W_WIN, 1, true, true);
	} else {
		n = fmt_flags(buf, h->flags);
		line_col(&l, buf, n, W_FLAGS, n, false, true);
		line_num(&l, h->seq, W_SEQ, true);
		line_num(&l, h->ack, W_SEQ, true);
		line_num(&l, h->window, W_WIN, true);
	}
	line_num(&l, e->packet_len, W_LEN, false);
	put_ext_chain(&l, h);
	if (h->l4_error)
		put_reason(&l, h);
	else if (tcp_opts_shown(&h->opts))
		line_tcp_opts(&l, &h->opts, h->flags);
	*l.p++ = '\n';
	if (keyed)
		pkt_text_put(&rest_cache, &key, rest, (size_t)(l.p - rest), NULL, 0);
	return line_end(dst, cap, start, &l);
}
