// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* JSON printer: one Tracee-style event envelope per line, no allocation. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "decode.h"
#include "events.h"
#include "output.h"
#include "output_fmt.h"

/*
 * A write cursor; an append that does not fit sets ovf and takes the room away (end = p), so
 * every later append fails too and one comparison per append is all the checking there is.
 */
struct cur {
	char *p;
	char *end;
	bool ovf;
};

/* Inlined so the cursor stays in registers and literal copies become plain stores. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE bool room(struct cur *c, size_t n)
{
	if ((size_t)(c->end - c->p) >= n)
		return true;
	c->ovf = true;
	c->end = c->p;
	return false;
}

static ALWAYS_INLINE void put_mem(struct cur *c, const void *s, size_t n)
{
	if (!room(c, n))
		return;
	memcpy(c->p, s, n);
	c->p += n;
}

static ALWAYS_INLINE void put_char(struct cur *c, char ch)
{
	if (room(c, 1))
		*c->p++ = ch;
}

#define put_lit(c, s) put_mem((c), (s), sizeof(s) - 1)

/* Digits go straight to their place, back to front: no scratch copy. */
static ALWAYS_INLINE void put_u64(struct cur *c, uint64_t v)
{
	size_t n = dec_len(v);

	if (!room(c, n))
		return;
	c->p += n;
	dec_put(c->p, v);
}

/*
 * A timestamp in nanoseconds: its seconds' digits change once a second, so they are kept
 * from the last event and only the nine digits below them are made each time.
 */
static ALWAYS_INLINE void put_ts(struct cur *c, uint64_t ts)
{
	static _Thread_local uint64_t last_sec;
	static _Thread_local char sec_digits[20];
	static _Thread_local size_t sec_len;
	uint64_t sec = ts / 1000000000u;
	uint32_t ns = (uint32_t)(ts % 1000000000u);
	char *end;

	if (!sec) {
		put_u64(c, ts);
		return;
	}
	if (sec != last_sec) {
		sec_len = fmt_u64(sec_digits, sec);
		last_sec = sec;
	}
	if (!room(c, sec_len + 9))
		return;
	memcpy(c->p, sec_digits, sec_len);
	c->p += sec_len + 9;
	end = c->p;
	/* Nine digits, leading zeros kept: a tenth for the last one, then four pairs. */
	end[-1] = (char)('0' + ns % 10);
	ns /= 10;
	for (end -= 3; end >= c->p - 9; end -= 2) {
		end[0] = dec_pairs[2 * (ns % 100)];
		end[1] = dec_pairs[2 * (ns % 100) + 1];
		ns /= 100;
	}
}

static ALWAYS_INLINE void put_bool(struct cur *c, bool v)
{
	if (v)
		put_lit(c, "true");
	else
		put_lit(c, "false");
}

static void put_u4(struct cur *c, uint32_t v)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6] = {'\\', 'u', hex[v >> 12 & 0xf], hex[v >> 8 & 0xf], hex[v >> 4 & 0xf],
		       hex[v & 0xf]};

	put_mem(c, esc, sizeof(esc));
}

static void put_u00xx(struct cur *c, unsigned char b)
{
	put_u4(c, b);
}

/* \uXXXX, or a surrogate pair past the BMP (RFC 8259 section 7). */
static void put_ucp(struct cur *c, uint32_t cp)
{
	if (cp < 0x10000) {
		put_u4(c, cp);
		return;
	}
	cp -= 0x10000;
	put_u4(c, 0xd800 | cp >> 10);
	put_u4(c, 0xdc00 | (cp & 0x3ff));
}

/* Bytes a JSON string takes as they are: printable ASCII but the quote (0x22) and the
 * backslash (0x5c). */
static const bool json_plain[256] = {
	[0x20 ... 0x21] = true,
	[0x23 ... 0x5b] = true,
	[0x5d ... 0x7e] = true,
};

/* The rest of a JSON string from its first byte that is not plain, and the closing quote. */
static void put_json_str_rest(struct cur *c, const unsigned char *u, size_t n)
{
	size_t i = 0, run, l;
	uint32_t cp;

	while (i < n) {
		/* Copy runs of plain ASCII in one go: the common case for every string we print. */
		for (run = i; run < n && json_plain[u[run]]; run++)
			;
		if (run > i) {
			put_mem(c, u + i, run - i);
			i = run;
			continue;
		}
		if (u[i] == '"' || u[i] == '\\') {
			put_char(c, '\\');
			put_char(c, (char)u[i]);
			i++;
		} else if (u[i] < 0x80) {
			put_u00xx(c, u[i]);
			i++;
		} else if ((l = utf8_len(u + i, n - i)) == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0) {
			/* C1 controls (U+0080..U+009F, CSI among them) escaped: safe on a terminal. */
			put_u00xx(c, u[i + 1]);
			i += 2;
		} else if (l != 0) {
			cp = utf8_cp(u + i, l);
			if (is_format_char(cp))
				put_ucp(c, cp);
			else
				put_mem(c, u + i, l);
			i += l;
		} else {
			put_u00xx(c, u[i]);
			i++;
		}
	}
	put_char(c, '"');
}

/*
 * A JSON string of s[0..n): quote and backslash escaped, control bytes and DEL as \u00XX, format
 * characters (bidi controls, zero-width) as \uXXXX, other valid UTF-8 passed through, and each
 * byte of ill-formed UTF-8 as \u00XX so the line stays valid. Plain ASCII, what nearly every
 * name is, is copied as it is scanned; the rest goes out of line.
 */
static ALWAYS_INLINE void put_json_str(struct cur *c, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;
	char *p = c->p;

	if ((size_t)(c->end - p) < n + 2) {
		put_char(c, '"');
		put_json_str_rest(c, u, n);
		return;
	}
	*p++ = '"';
	while (i < n && json_plain[u[i]])
		*p++ = (char)u[i++];
	if (i == n) {
		*p++ = '"';
		c->p = p;
		return;
	}
	c->p = p;
	put_json_str_rest(c, u + i, n - i);
}

/*
 * A JSON string of a fixed-size name (an interface or a task's name: at most max bytes, ended
 * by a NUL when shorter): its length found while the plain bytes are copied, in one pass with
 * no call; the first byte that needs escaping hands the rest to put_json_str.
 */
static ALWAYS_INLINE void put_json_name(struct cur *c, const char *s, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	char *p = c->p;
	size_t i;

	if ((size_t)(c->end - p) < max + 2) {
		put_json_str(c, s, strnlen(s, max));
		return;
	}
	*p++ = '"';
	for (i = 0; i < max && u[i] && json_plain[u[i]]; i++)
		*p++ = (char)u[i];
	if (i == max || !u[i]) {
		*p++ = '"';
		c->p = p;
		return;
	}
	/* A byte that needs escaping (rare: names are plain ASCII as a rule): the rest escaped. */
	c->p = p;
	put_json_str_rest(c, u + i, strnlen(s, max) - i);
}

static ALWAYS_INLINE void put_addr(struct cur *c, int family, const uint8_t *addr)
{
	char buf[INET6_ADDRSTRLEN];
	size_t n;

	/* The dotted quad straight into place: "255.255.255.255" with its quotes is 17 bytes. */
	if (family == AF_INET && (size_t)(c->end - c->p) >= 17) {
		*c->p++ = '"';
		c->p += fmt_ipv4(c->p, addr);
		*c->p++ = '"';
		return;
	}
	if (family == AF_INET) {
		n = fmt_ipv4(buf, addr);
	} else if (inet_ntop(family, addr, buf, sizeof(buf))) {
		n = strlen(buf);
	} else {
		/* The decoder only emits AF_INET and AF_INET6; anything else prints as "?". */
		buf[0] = '?';
		n = 1;
	}
	put_char(c, '"');
	put_mem(c, buf, n);
	put_char(c, '"');
}

/* Lower-case hex of b[0..n), quoted, as tshark prints bytes. */
static void put_hex(struct cur *c, const uint8_t *b, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	put_char(c, '"');
	for (i = 0; i < n; i++) {
		put_char(c, hex[b[i] >> 4]);
		put_char(c, hex[b[i] & 0xf]);
	}
	put_char(c, '"');
}

/* The tcp_options arg: a key for each option the header had, nothing for the others. */
static ALWAYS_INLINE void put_tcp_opts(struct cur *c, const struct tcp_opts *o)
{
	/* The first key has no comma before it. */
	bool first = true;
	size_t i, n;

#define KEY(k)                                                                                     \
	do {                                                                                       \
		if (first)                                                                         \
			put_lit(c, "\"" k "\":");                                                  \
		else                                                                               \
			put_lit(c, ",\"" k "\":");                                                 \
		first = false;                                                                     \
	} while (0)
	put_lit(c, ",{\"name\":\"tcp_options\",\"type\":\"trace.TCPOptions\",\"value\":{");
	if (o->present & TCP_OPT_MSS) {
		KEY("mss");
		put_u64(c, o->mss);
	}
	if (o->present & TCP_OPT_WSCALE) {
		KEY("wscale");
		put_u64(c, o->wscale);
	}
	if (o->present & TCP_OPT_SACK_PERM) {
		KEY("sack_permitted");
		put_lit(c, "true");
	}
	if (o->present & TCP_OPT_SACK) {
		KEY("sack_blocks");
		put_char(c, '[');
		for (i = 0; i < o->sack_n && i < TCP_OPTS_SACK_MAX; i++) {
			if (i)
				put_char(c, ',');
			put_char(c, '[');
			put_u64(c, o->sack[i][0]);
			put_char(c, ',');
			put_u64(c, o->sack[i][1]);
			put_char(c, ']');
		}
		put_char(c, ']');
	}
	if (o->present & TCP_OPT_TS) {
		KEY("ts_val");
		put_u64(c, o->ts_val);
		put_lit(c, ",\"ts_ecr\":");
		put_u64(c, o->ts_ecr);
	}
	if (o->present & TCP_OPT_TFO) {
		KEY("tfo_cookie");
		put_hex(c, o->tfo_cookie,
			o->tfo_len < TCP_OPTS_COOKIE_MAX ? o->tfo_len : TCP_OPTS_COOKIE_MAX);
		/* Kind 254 with magic 0xF989, the form before kind 34 (tshark and the table say so). */
		if (o->tfo_exp)
			put_lit(c, ",\"tfo_experimental\":true");
	}
	if (o->unknown_n) {
		KEY("unknown");
		put_char(c, '[');
		for (i = 0; i < o->unknown_n && i < TCP_OPTS_UNKNOWN_MAX; i++) {
			if (i)
				put_char(c, ',');
			put_lit(c, "{\"kind\":");
			put_u64(c, o->unknown[i].kind);
			put_lit(c, ",\"length\":");
			put_u64(c, o->unknown[i].len);
			/* its bytes after kind and length (MPTCP's fields, an MD5 signature) */
			put_lit(c, ",\"data\":");
			n = o->unknown[i].len - 2u;
			put_hex(c, o->unknown_data + o->unknown[i].data,
				o->unknown[i].data + n <= TCP_OPTS_MAX_LEN ? n : 0);
			put_char(c, '}');
		}
		put_char(c, ']');
	}
	if (o->malformed) {
		KEY("malformed");
		put_lit(c, "true");
	}
	if (o->cut) {
		/* The capture file's snapshot length ended the header here (-r): what is above is
		 * what came before the cut. */
		KEY("truncated");
		put_lit(c, "true");
	}
#undef KEY
	put_lit(c, "}}");
}

/* The envelope's process fields, from ",\"processId\"" to the container id. */
static ALWAYS_INLINE void put_process(struct cur *c, const struct pkt_process *p)
{
	put_lit(c, ",\"processId\":");
	put_u64(c, p->pid);
	put_lit(c, ",\"threadId\":");
	put_u64(c, p->tid);
	put_lit(c, ",\"parentProcessId\":");
	put_u64(c, p->ppid);
	put_lit(c, ",\"userId\":");
	put_u64(c, p->uid);
	put_lit(c, ",\"processName\":");
	put_json_name(c, p->comm, sizeof(p->comm));
	put_lit(c, ",\"hostName\":");
	put_json_str(c, p->hostname, strlen(p->hostname));
	put_lit(c, ",\"cgroupId\":");
	put_u64(c, p->cgroup_id);
	put_lit(c, ",\"containerId\":");
	put_json_str(c, p->container_id, strlen(p->container_id));
}

/* put_process, its text kept per thread id (proc_text_get). */
static ALWAYS_INLINE void put_process_cached(struct cur *c, const struct pkt_process *p)
{
	static _Thread_local struct proc_text_cache cache;
	const struct proc_text *t = proc_text_get(&cache, p, 0);
	char *start = c->p;

	if (t) {
		put_mem(c, t->text, t->len);
		return;
	}
	put_process(c, p);
	if (!c->ovf)
		proc_text_put(&cache, p, 0, start, (size_t)(c->p - start));
}

#define SUMMARY_U64(c, key, v)                                                                     \
	do {                                                                                       \
		put_lit(c, ",\"" key "\":");                                                        \
		put_u64(c, v);                                                                     \
	} while (0)

/* net_flow_tcp_begin / net_flow_tcp_end: the same envelope, the flow's args. */
static size_t format_flow_json(char *dst, size_t cap, const struct pkt_event *e)
{
	struct cur c = {.p = dst, .end = dst + cap, .ovf = false};
	const struct pkt_flow_event *f = &e->flow;
	const char *s;

	put_lit(&c, "{\"timestamp\":");
	put_ts(&c, e->timestamp_ns);
	if (f->end)
		put_lit(&c, ",\"eventName\":\"net_flow_tcp_end\"");
	else
		put_lit(&c, ",\"eventName\":\"net_flow_tcp_begin\"");
	put_process_cached(&c, &e->proc);
	put_lit(&c, ",\"args\":[{\"name\":\"conn_direction\",\"type\":\"string\",\"value\":");
	if (f->outgoing)
		put_lit(&c, "\"outgoing\"}");
	else
		put_lit(&c, "\"incoming\"}");
	put_lit(&c, ",{\"name\":\"src\",\"type\":\"string\",\"value\":");
	put_addr(&c, f->family, f->src_addr);
	put_lit(&c, "},{\"name\":\"dst\",\"type\":\"string\",\"value\":");
	put_addr(&c, f->family, f->dst_addr);
	put_lit(&c, "},{\"name\":\"src_port\",\"type\":\"u16\",\"value\":");
	put_u64(&c, f->src_port);
	put_lit(&c, "},{\"name\":\"dst_port\",\"type\":\"u16\",\"value\":");
	put_u64(&c, f->dst_port);
	put_char(&c, '}');
	if (f->end) {
		put_lit(&c, ",{\"name\":\"summary\",\"type\":\"trace.FlowSummary\",\"value\":{"
			    "\"begin_seen\":");
		put_bool(&c, f->begin_seen);
		/* A flow older than pktrace (its handshake not seen) has no duration: null, not 0. */
		if (f->begin_seen)
			SUMMARY_U64(&c, "duration_ns", f->duration_ns);
		else
			put_lit(&c, ",\"duration_ns\":null");
		SUMMARY_U64(&c, "bytes_sent", f->bytes_sent);
		SUMMARY_U64(&c, "bytes_received", f->bytes_received);
		SUMMARY_U64(&c, "segs_sent", f->segs_sent);
		SUMMARY_U64(&c, "segs_received", f->segs_received);
		SUMMARY_U64(&c, "data_segs_sent", f->data_segs_sent);
		SUMMARY_U64(&c, "data_segs_received", f->data_segs_received);
		SUMMARY_U64(&c, "retrans_segs", f->retrans_segs);
		SUMMARY_U64(&c, "retrans_bytes", f->retrans_bytes);
		SUMMARY_U64(&c, "srtt_us", f->srtt_us);
		SUMMARY_U64(&c, "min_rtt_us", f->min_rtt_us);
		SUMMARY_U64(&c, "delivered_ce", f->delivered_ce);
		put_lit(&c, ",\"close_reason\":");
		s = flow_close_reason_name(f->close_reason);
		put_json_str(&c, s, strlen(s));
		put_lit(&c, ",\"closed_first\":");
		s = flow_closer_name(f->closed_first);
		if (*s)
			put_json_str(&c, s, strlen(s));
		else
			put_lit(&c, "null");
		put_lit(&c, "}}");
	}
	put_lit(&c, "]}\n");
	return c.ovf ? 0 : (size_t)(c.p - dst);
}

static ALWAYS_INLINE void put_direction(struct cur *c, bool egress)
{
	if (egress)
		put_lit(c, ",\"direction\":\"egress\"");
	else
		put_lit(c, ",\"direction\":\"ingress\"");
}

/* The packet metadata (trace.PacketMetadata, with pktrace's additions), closed unless more
 * follows; false: the event ends here (no transport header to show). */
static ALWAYS_INLINE bool put_metadata(struct cur *c, const struct pkt_event *e, char **dir_from,
					char **dir_to)
{
	const struct pkt_headers *h = &e->hdr;
	const char *err;
	size_t i;

	put_lit(c, ",\"args\":[{\"name\":\"metadata\",\"type\":\"trace.PacketMetadata\","
		   "\"value\":{\"src_ip\":");
	put_addr(c, h->family, h->src_addr);
	put_lit(c, ",\"dst_ip\":");
	put_addr(c, h->family, h->dst_addr);
	put_lit(c, ",\"src_port\":");
	put_u64(c, h->src_port);
	put_lit(c, ",\"dst_port\":");
	put_u64(c, h->dst_port);
	put_lit(c, ",\"protocol\":");
	put_u64(c, h->protocol);
	put_lit(c, ",\"packet_len\":");
	put_u64(c, e->packet_len);
	put_lit(c, ",\"iface\":");
	put_json_name(c, e->ifname, sizeof(e->ifname));
	*dir_from = c->p;
	put_direction(c, e->egress);
	*dir_to = c->p;
	if (h->ext_count) {
		put_lit(c, ",\"ipv6_ext\":{\"count\":");
		put_u64(c, h->ext_count);
		put_lit(c, ",\"length\":");
		put_u64(c, h->ext_len);
		put_lit(c, ",\"types\":[");
		for (i = 0; i < h->ext_types_n && i < EVENT_EXT_TYPES; i++) {
			if (i)
				put_char(c, ',');
			put_u64(c, h->ext_types[i]);
		}
		put_lit(c, "]}");
	}
	/* The IP events show their header whatever the transport; the others need theirs. */
	if (h->l4_error && e->event != EVENT_NET_PACKET_IPV4 && e->event != EVENT_NET_PACKET_IPV6) {
		/* No transport header to show: the metadata alone, and why. */
		put_lit(c, ",\"decode_error\":");
		err = decode_strerror(h->l4_error);
		put_json_str(c, err, strlen(err));
		put_lit(c, "}}]}\n");
		return false;
	}
	put_lit(c, "}}");
	return true;
}

/*
 * The nine flags as text, three at a time: the eight texts of each group made once, so a
 * packet's flags are three fixed-size copies and no branch on data that varies per packet.
 */
#define FLAG_TEXT_MAX 48
struct flag_text {
	char s[FLAG_TEXT_MAX];
	uint8_t len;
};
static struct flag_text flag_texts[3][8];

__attribute__((constructor)) static void flag_texts_init(void)
{
	static const char *const names[9] = { "FIN", "SYN", "RST", "PSH", "ACK",
					      "URG", "ECE", "CWR", "NS" };

	for (int g = 0; g < 3; g++)
		for (int v = 0; v < 8; v++) {
			struct flag_text *t = &flag_texts[g][v];
			size_t n = 0;

			for (int i = 0; i < 3; i++)
				n += (size_t)snprintf(t->s + n, FLAG_TEXT_MAX - n, ",\"%s\":%s",
						      names[3 * g + i], v >> i & 1 ? "true" : "false");
			t->len = (uint8_t)n;
		}
}

static ALWAYS_INLINE void put_flags(struct cur *c, uint16_t f)
{
	for (int g = 0; g < 3; g++) {
		const struct flag_text *t = &flag_texts[g][f >> (3 * g) & 7];

		if (!room(c, FLAG_TEXT_MAX))
			return;
		memcpy(c->p, t->s, FLAG_TEXT_MAX);
		c->p += t->len;
	}
}

static ALWAYS_INLINE void put_proto_tcp(struct cur *c, const struct pkt_headers *h)
{

	put_lit(c, ",{\"name\":\"proto_tcp\",\"type\":\"trace.ProtoTCP\",\"value\":{\"srcPort\":");
	put_u64(c, h->src_port);
	put_lit(c, ",\"dstPort\":");
	put_u64(c, h->dst_port);
	put_lit(c, ",\"seq\":");
	put_u64(c, h->seq);
	put_lit(c, ",\"ack\":");
	put_u64(c, h->ack);
	put_lit(c, ",\"dataOffset\":");
	put_u64(c, h->data_offset);
	put_flags(c, h->flags);
	put_lit(c, ",\"window\":");
	put_u64(c, h->window);
	put_lit(c, ",\"checksum\":");
	put_u64(c, h->checksum);
	put_lit(c, ",\"urgent\":");
	put_u64(c, h->urgent);
	put_lit(c, "}}");
	if (tcp_opts_shown(&h->opts))
		put_tcp_opts(c, &h->opts);
}

static void put_proto_udp(struct cur *c, const struct pkt_headers *h)
{
	put_lit(c, ",{\"name\":\"proto_udp\",\"type\":\"trace.ProtoUDP\",\"value\":{\"srcPort\":");
	put_u64(c, h->src_port);
	put_lit(c, ",\"dstPort\":");
	put_u64(c, h->dst_port);
	put_lit(c, ",\"length\":");
	put_u64(c, h->udp_len);
	put_lit(c, ",\"checksum\":");
	put_u64(c, h->checksum);
	put_lit(c, "}}");
}

static void put_proto_icmp(struct cur *c, const struct pkt_headers *h)
{
	char tc[64];
	size_t n = fmt_icmp_typecode(tc, h->family, h->icmp_type, h->icmp_code);

	if (h->family == AF_INET6)
		put_lit(c, ",{\"name\":\"proto_icmpv6\",\"type\":\"trace.ProtoICMPv6\","
			   "\"value\":{\"typeCode\":");
	else
		put_lit(c, ",{\"name\":\"proto_icmp\",\"type\":\"trace.ProtoICMP\","
			   "\"value\":{\"typeCode\":");
	put_json_str(c, tc, n);
	put_lit(c, ",\"checksum\":");
	put_u64(c, h->checksum);
	if (h->family != AF_INET6) {
		put_lit(c, ",\"id\":");
		put_u64(c, h->icmp_id);
		put_lit(c, ",\"seq\":");
		put_u64(c, h->icmp_seq);
	}
	put_lit(c, "}}");
}

static void put_proto_ip(struct cur *c, const struct pkt_headers *h)
{
	char num[4];
	const char *p;

	if (h->family == AF_INET6) {
		put_lit(c, ",{\"name\":\"proto_ipv6\",\"type\":\"trace.ProtoIPv6\","
			   "\"value\":{\"version\":");
		put_u64(c, h->ip_version);
		put_lit(c, ",\"trafficClass\":");
		put_u64(c, h->tos);
		put_lit(c, ",\"flowLabel\":");
		put_u64(c, h->flow_label);
		put_lit(c, ",\"length\":");
		put_u64(c, h->ip_len);
		put_lit(c, ",\"nextHeader\":");
		p = fmt_ip_proto(h->next_header, num);
		put_json_str(c, p, strlen(p));
		put_lit(c, ",\"hopLimit\":");
		put_u64(c, h->ttl);
	} else {
		put_lit(c, ",{\"name\":\"proto_ipv4\",\"type\":\"trace.ProtoIPv4\","
			   "\"value\":{\"version\":");
		put_u64(c, h->ip_version);
		put_lit(c, ",\"IHL\":");
		put_u64(c, h->ihl);
		put_lit(c, ",\"TOS\":");
		put_u64(c, h->tos);
		put_lit(c, ",\"length\":");
		put_u64(c, h->ip_len);
		put_lit(c, ",\"id\":");
		put_u64(c, h->ip_id);
		put_lit(c, ",\"flags\":");
		put_u64(c, h->ip_flags);
		put_lit(c, ",\"fragOffset\":");
		put_u64(c, h->frag_off);
		put_lit(c, ",\"TTL\":");
		put_u64(c, h->ttl);
		put_lit(c, ",\"protocol\":");
		p = fmt_ip_proto(h->next_header, num);
		put_json_str(c, p, strlen(p));
		put_lit(c, ",\"checksum\":");
		put_u64(c, h->ip_checksum);
	}
	put_lit(c, ",\"srcIP\":");
	put_addr(c, h->family, h->src_addr);
	put_lit(c, ",\"dstIP\":");
	put_addr(c, h->family, h->dst_addr);
	put_lit(c, "}}");
}

size_t format_json(char *dst, size_t cap, const struct pkt_event *e)
{
	/* The args but the direction (pkt_text_get). */
	static _Thread_local struct pkt_text_cache args_cache;
	struct cur c = {.p = dst, .end = dst + cap, .ovf = false};
	struct pkt_text_key key;
	const struct pkt_text *t;
	char *args, *dir_from, *dir_to;
	bool keyed;
	const char *name;

	if (e->event == EVENT_NET_FLOW_TCP_BEGIN || e->event == EVENT_NET_FLOW_TCP_END)
		return format_flow_json(dst, cap, e);
	if (e->event < 0 || e->event >= EVENT__COUNT)
		return 0;
	name = events[e->event].name;
	put_lit(&c, "{\"timestamp\":");
	put_ts(&c, e->timestamp_ns);
	put_lit(&c, ",\"eventName\":\"");
	put_mem(&c, name, strlen(name));
	put_char(&c, '"');
	put_process_cached(&c, &e->proc);
	keyed = pkt_text_key_of(&args_cache, e, 0, &key);
	if (keyed && (t = pkt_text_get(&args_cache, &key)) != NULL) {
		put_mem(&c, t->text, t->len_a);
		put_direction(&c, e->egress);
		put_mem(&c, t->text + t->len_a, t->len_b);
		put_lit(&c, "]}\n");
		return c.ovf ? 0 : (size_t)(c.p - dst);
	}
	args = c.p;
	if (!put_metadata(&c, e, &dir_from, &dir_to))
		return c.ovf ? 0 : (size_t)(c.p - dst);
	switch (e->event) {
	case EVENT_NET_PACKET_TCP:
		put_proto_tcp(&c, &e->hdr);
		break;
	case EVENT_NET_PACKET_UDP:
		put_proto_udp(&c, &e->hdr);
		break;
	case EVENT_NET_PACKET_ICMP:
	case EVENT_NET_PACKET_ICMPV6:
		put_proto_icmp(&c, &e->hdr);
		break;
	default:
		put_proto_ip(&c, &e->hdr);
		break;
	}
	if (keyed && !c.ovf)
		pkt_text_put(&args_cache, &key, args, (size_t)(dir_from - args), dir_to,
			     (size_t)(c.p - dir_to));
	put_lit(&c, "]}\n");
	return c.ovf ? 0 : (size_t)(c.p - dst);
}
