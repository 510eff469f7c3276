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
 * A line is built unchecked in a local buffer, then copied out if it fits: one bounds check per
 * line. The longest line: 197 bytes of values (time 15, comm 17, pid 10, dir 3, two endpoints
 * of 53, flags 11, seq and ack 10, window 5, length 10), at most 119 of padding (the sum of the
 * widths), 10 separators and the newline: 327; then the chain note (" ext:255+/4294967295B",
 * 21): 348. A line without TCP fields is shorter: its ports, seq, ack and window go, and its
 * reason (" (" + at most 28 + ")") is less than they took. Then the options (tcp_opts_fmt):
 * " options [" and "]" (11), at most 6 columns per option byte (",unknown-255" for 2 bytes,
 * 240) and " [bad opt]" (10): 261, so 609 in all.
 */
#define TABLE_LINE_MAX 640


/* Copy the finished line out, or nothing at all when it does not fit. */
static size_t line_out(char *dst, size_t cap, const char *line, const struct line *l)
{
	size_t n = (size_t)(l->p - line);

	if (n > cap)
		return 0;
	memcpy(dst, line, n);
	return n;
}


/*
 * tcpdump style: a.b.c.d.port for IPv4, [v6]:port for IPv6 (its own form needs no brackets);
 * the address alone when there is no port (no TCP header was read).
 */
static size_t fmt_endpoint(char *buf, int family, const uint8_t *addr, uint16_t port,
			   bool has_port)
{
	char a[INET6_ADDRSTRLEN];
	size_t n = 0, al;

	if (family == AF_INET)
		al = fmt_ipv4(a, addr);
	else if (inet_ntop(family, addr, a, sizeof(a)))
		al = strlen(a);
	else
		al = (size_t)(stpcpy(a, "?") - a);
	if (!has_port) {
		memcpy(buf, a, al);
		return al;
	}
	if (family == AF_INET6)
		buf[n++] = '[';
	memcpy(buf + n, a, al);
	n += al;
	if (family == AF_INET6)
		buf[n++] = ']';
	buf[n++] = family == AF_INET6 ? ':' : '.';
	return n + fmt_u64(buf + n, port);
}




size_t format_table_header(char *dst, size_t cap)
{
	char line[TABLE_LINE_MAX];
	struct line l = {.p = line};

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
	return line_out(dst, cap, line, &l);
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
	char line[TABLE_LINE_MAX];
	struct line l = {.p = line};
	char buf[64], a[24], b[24], d[24];
	size_t n, cols;

	fmt_time(buf, e->timestamp_ns);
	line_col(&l, buf, 15, W_TIME, 15, false, true);
	n = sanitize_comm(buf, e->proc.comm, strnlen(e->proc.comm, sizeof(e->proc.comm)), &cols);
	line_col(&l, buf, n, W_COMM, cols, false, true);
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
	return line_out(dst, cap, line, &l);
}

size_t format_table(char *dst, size_t cap, const struct pkt_event *e)
{
	const struct pkt_headers *h = &e->hdr;
	char line[TABLE_LINE_MAX];
	struct line l = {.p = line};
	/* [v6 address]:port at most: 1 + 45 + 2 + 5. */
	char buf[64];
	size_t n, cols;

	if (e->event != EVENT_NET_PACKET_TCP)
		return format_table_flow(dst, cap, e);
	fmt_time(buf, e->timestamp_ns);
	line_col(&l, buf, 15, W_TIME, 15, false, true);
	n = sanitize_comm(buf, e->proc.comm, strnlen(e->proc.comm, sizeof(e->proc.comm)), &cols);
	line_col(&l, buf, n, W_COMM, cols, false, true);
	line_num(&l, e->proc.pid, W_PID, true);
	if (e->egress)
		line_col(&l, "out", 3, W_DIR, 3, false, true);
	else
		line_col(&l, "in", 2, W_DIR, 2, false, true);
	n = fmt_endpoint(buf, h->family, h->src_addr, h->src_port, !h->l4_error);
	line_col(&l, buf, n, W_ADDR, n, false, true);
	n = fmt_endpoint(buf, h->family, h->dst_addr, h->dst_port, !h->l4_error);
	line_col(&l, buf, n, W_ADDR, n, false, true);
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
	/* The IPv6 chain, compactly: headers (255+ when the kernel stopped counting) and bytes. */
	if (h->ext_count) {
		line_mem(&l, " ext:", 5);
		n = fmt_u64(buf, h->ext_count);
		line_mem(&l, buf, n);
		if (h->ext_count >= EVENT_EXT_COUNT_MAX)
			*l.p++ = '+';
		*l.p++ = '/';
		n = fmt_u64(buf, h->ext_len);
		line_mem(&l, buf, n);
		*l.p++ = 'B';
	}
	if (h->l4_error) {
		const char *why = decode_strerror(h->l4_error);

		*l.p++ = ' ';
		*l.p++ = '(';
		line_mem(&l, why, strnlen(why, 28));
		*l.p++ = ')';
	}
	if (!h->l4_error && tcp_opts_shown(&h->opts))
		line_tcp_opts(&l, &h->opts);
	*l.p++ = '\n';
	return line_out(dst, cap, line, &l);
}
