// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for pktrace's user-space path: decode_headers() on a whole IP packet (IPv6
 * extension-header chains of any length), decode_record() on the record the kernel side would
 * write for that packet (pktrace.h: the chain summarized, well-formed or broken on purpose) and
 * on a record taken straight from the input bytes, then format_json() and format_table() on
 * every event (decode_packet_events: the IP event and the transport's, TCP, UDP, ICMP or
 * ICMPv6) the decoder gives, those without a transport header included.
 * Any invariant that does not hold ends in __builtin_trap(), which libFuzzer reports as a crash.
 *
 * Input: a fixed prefix of FUZZ_PREFIX bytes (missing bytes read as zero) that fills the rest of
 * the event as decode_record() does from a record, then the packet:
 *
 *   off  len  field
 *     0    1  direction      as pkt_record.direction (PKT_EGRESS is egress, any other ingress)
 *     1    1  select         bits 0-2 host name (7: the comm bytes), bit 3 a container id,
 *                           bits 4-6 the shape of the record made from the packet
 *     2    1  cap            picks one more too-small capacity for each printer; bits 0-1
 *                           the socket class of every record (sk_protos[] below)
 *     3    4  packet_len     little endian, as every multi-byte field here
 *     7    8  timestamp_ns
 *    15    4  pid, then tid, ppid, uid (4 each)
 *    31    8  cgroup_id
 *    39   16  comm           raw bytes, cut at the first NUL as pkt_owner.comm
 *    55   16  ifname         raw bytes, as pkt_record.ifname
 *    71    1  flags          pkt_record.flags of the record taken straight from the packet bytes;
 *                           bits 4-7 also pick its l4_proto (l4_protos[] below)
 *    72    1  ext_count      its ext_count
 *    73    2  ext_len        its ext_len
 *    75    -  packet         a whole IP packet, as long as -max_len allows; its first PKT_HDR_MAX
 *                           bytes are also that record's hdr[]
 *
 * The same input is also a flow record (PKT_REC_FLOW): the owner from the prefix, pkt_record.flags
 * from byte 71, the packet's first sizeof(struct pkt_flow) bytes as its struct pkt_flow (missing
 * bytes zero), and byte 72 bits 0-1 the record's shape (flow_shape below), byte 73 the length
 * the broken shapes use. decode_flow_record() must give an event that says what the record says,
 * or refuse it when it is malformed; both printers then run on that event.
 *
 * Build and run: make fuzz (see the Makefile); seeds in tests/fuzz/corpus (make_corpus.py).
 */
#define _GNU_SOURCE /* memmem */
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "decode.h"
#include "event.h"
#include "events.h"
#include "output.h"
#include "output_fmt.h"
#include "pktrace.h"

/* Arg openings: a string value cannot fake '{"name"', since its quotes are escaped (a value's
 * escaped quote followed by its real closing one can fake '"x",', so that form is not used). */
#define TCP_OPTIONS_ARG "{\"name\":\"tcp_options\",\"type\":\"trace.TCPOptions\""
#define PROTO_TCP_ARG "{\"name\":\"proto_tcp\",\"type\":\"trace.ProtoTCP\""

#define FUZZ_PREFIX 75
#define CANARY_LEN 32
#define CANARY_BYTE 0xa5
/* Generous room for one line: the JSON line needs under 1 KiB even with every string escaped. */
#define BIG_CAP 8192
/* format_table builds the line in a local buffer of this size (output_table.c). */
#define TABLE_LINE_MAX 768
/* format_text's, likewise (output_text.c). */
#define TEXT_LINE_MAX 1024

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_decode: invariant failed at %s:%d: %s\n", __FILE__,  \
				__LINE__, #cond);                                                  \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

/* Host names as a UTS namespace may hold them: any bytes but NUL, at most 64. */
static const char *const hostnames[7] = {
    "web-1",
    "",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "evil\x1b[2J\"\\\n\r\t\x7f\x01",
    "\xc3\xa9t\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x90\xa7",		/* valid UTF-8 */
    "\xff\xfe\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80", /* overlong, surrogate, >U+10FFFF */
    "\xc2\x9b\x33\x31m\xc2\x85x\xe2\x82",			/* C1 CSI "31m", cut sequence */
};
static const char container_id[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* ---- An independent UTF-8 and JSON checker (does not share code with the printers) ---- */

/* Length of one well-formed UTF-8 scalar at s[0..n), or 0: no overlongs, surrogates, > 10FFFF. */
static size_t check_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c, min;
	size_t len, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	} else if ((s[0] & 0xe0) == 0xc0) {
		len = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

struct json {
	const unsigned char *p;
	const unsigned char *end;
};

static bool j_value(struct json *j, int depth);

static bool j_lit(struct json *j, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, s, n) != 0)
		return false;
	j->p += n;
	return true;
}

static bool j_string(struct json *j)
{
	uint32_t cp;
	size_t l;
	int i;

	if (j->p == j->end || *j->p != '"')
		return false;
	j->p++;
	while (j->p < j->end) {
		unsigned char c = *j->p;

		if (c == '"') {
			j->p++;
			return true;
		}
		if (c == '\\') {
			if (++j->p == j->end)
				return false;
			c = *j->p++;
			if (c == 'u') {
				for (i = 0; i < 4; i++, j->p++)
					if (j->p == j->end || !((*j->p >= '0' && *j->p <= '9') ||
								(*j->p >= 'a' && *j->p <= 'f') ||
								(*j->p >= 'A' && *j->p <= 'F')))
						return false;
			} else if (!strchr("\"\\/bfnrt", c) || c == 0) {
				return false;
			}
			continue;
		}
		/*
		 * Raw control bytes and DEL are garbage on a terminal even where JSON allows DEL.
		 * C1 controls (U+0080..U+009F as UTF-8) pass: RFC 8259 allows them raw and
		 * format_json() passes well-formed UTF-8 through (only the table replaces them).
		 */
		if (c < 0x20 || c == 0x7f)
			return false;
		l = check_utf8(j->p, (size_t)(j->end - j->p), &cp);
		if (l == 0)
			return false;
		j->p += l;
	}
	return false;
}

static bool j_number(struct json *j)
{
	const unsigned char *start;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	start = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	if (j->p == start || (*start == '0' && j->p - start > 1))
		return false; /* no digits, or a leading zero */
	/* The printers emit only integers: a fraction or exponent would be garbage here. */
	return true;
}

static bool j_container(struct json *j, int depth, bool object)
{
	unsigned char close = object ? '}' : ']';

	j->p++;
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		if (object) {
			if (!j_string(j) || j->p == j->end || *j->p++ != ':')
				return false;
		}
		if (!j_value(j, depth + 1) || j->p == j->end)
			return false;
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p != close)
			return false;
		j->p++;
		return true;
	}
}

static bool j_value(struct json *j, int depth)
{
	if (depth > 16 || j->p == j->end)
		return false;
	switch (*j->p) {
	case '{':
		return j_container(j, depth, true);
	case '[':
		return j_container(j, depth, false);
	case '"':
		return j_string(j);
	case 't':
		return j_lit(j, "true");
	case 'f':
		return j_lit(j, "false");
	case 'n':
		return j_lit(j, "null");
	default:
		return j_number(j);
	}
}

/* One JSON object, every byte printable or well-formed UTF-8, then '\n' and nothing else. */
static void check_json_line(const char *s, size_t n)
{
	struct json j = {.p = (const unsigned char *)s, .end = (const unsigned char *)s + n - 1};
	size_t i;
	int depth = 0;
	bool in_str = false, esc = false;

	CHECK(n >= 3 && s[n - 1] == '\n' && s[0] == '{');
	for (i = 0; i + 1 < n; i++)
		CHECK((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] != 0x7f);
	/* Balanced braces and brackets outside strings: the cheap check, before the full parse. */
	for (i = 0; i + 1 < n; i++) {
		char c = s[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			CHECK(--depth >= 0);
			CHECK(depth > 0 || i + 2 == n); /* the top object closes last */
		}
	}
	CHECK(!in_str && depth == 0);
	CHECK(j_value(&j, 0));
	CHECK(j.p == j.end); /* nothing between the object and the newline */
}

/* The printed value of "key": must be exactly want (a number or literal), followed by , or }. */
static void check_json_field(const char *s, size_t n, const char *key, const char *want)
{
	char pat[64];
	const char *at;
	size_t pl = (size_t)snprintf(pat, sizeof(pat), "\"%s\":%s", key, want);

	at = memmem(s, n, pat, pl);
	CHECK(at != NULL);
	CHECK(at[pl] == ',' || at[pl] == '}');
}

/* Bidi controls, zero-width and the other characters that hide or reorder text (Cf, Zl, Zp). */
static bool invisible(uint32_t cp)
{
	switch (cp) {
	case 0xad: case 0x61c: case 0x6dd: case 0x70f: case 0x8e2: case 0x180e: case 0xfeff:
	case 0x110bd: case 0x110cd: case 0xe0001:
		return true;
	}
	return (cp >= 0x600 && cp <= 0x605) || (cp >= 0x890 && cp <= 0x891) ||
	       (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206f) ||
	       (cp >= 0xfff9 && cp <= 0xfffb) || (cp >= 0x13430 && cp <= 0x1343f) ||
	       (cp >= 0x1bca0 && cp <= 0x1bca3) || (cp >= 0x1d173 && cp <= 0x1d17a) ||
	       (cp >= 0xe0020 && cp <= 0xe007f);
}

/* A terminal line: UTF-8 with no C0, DEL, C1 or format character anywhere but the final '\n'. */
static void check_line_max(const char *s, size_t n, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t cp;
	size_t i = 0, l;

	CHECK(n >= 2 && n <= max && s[n - 1] == '\n');
	while (i + 1 < n) {
		l = check_utf8(u + i, n - 1 - i, &cp);
		CHECK(l != 0);
		CHECK(cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f));
		CHECK(!invisible(cp));
		i += l;
	}
}

static void check_table_line(const char *s, size_t n)
{
	check_line_max(s, n, TABLE_LINE_MAX);
}

typedef size_t (*format_fn)(char *dst, size_t cap, const struct pkt_event *e);

/*
 * Format e with cap bytes in a heap buffer followed by a canary: ASan sees a write past the
 * canary, the canary check one inside it. Returns the length; *out gets a copy of the bytes.
 */
static size_t format_capped(format_fn fn, const struct pkt_event *e, size_t cap, char *out)
{
	char *buf = malloc(cap + CANARY_LEN);
	size_t n, i;

	CHECK(buf != NULL);
	memset(buf + cap, CANARY_BYTE, CANARY_LEN);
	n = fn(buf, cap, e);
	CHECK(n <= cap);
	for (i = 0; i < CANARY_LEN; i++)
		CHECK((unsigned char)buf[cap + i] == CANARY_BYTE);
	if (out)
		memcpy(out, buf, n);
	free(buf);
	return n;
}

/* The line needs exactly n bytes: it fits in n, and any smaller cap gives 0 and stays inside. */
static size_t check_printer(format_fn fn, const struct pkt_event *e, uint8_t cap_sel, char *line)
{
	static char again[BIG_CAP];
	size_t n;

	n = format_capped(fn, e, BIG_CAP, line);
	CHECK(n > 0 && n < BIG_CAP);
	CHECK(format_capped(fn, e, n, again) == n);
	CHECK(memcmp(line, again, n) == 0);
	CHECK(format_capped(fn, e, n - 1, NULL) == 0);
	CHECK(format_capped(fn, e, 0, NULL) == 0);
	CHECK(format_capped(fn, e, (size_t)cap_sel * n / 256, NULL) == 0);
	return n;
}

/* The IPv6 chain as the RFCs lay it out, walked apart from the decoder: where it ends, and why. */
struct chain {
	size_t n, len, l4_off;
	uint8_t types[EVENT_EXT_TYPES];
	uint8_t last;  /* the next-header value that ended the walk */
	int stop;      /* 0: the transport (last) at l4_off, else the enum decode_error to give */
};

static void walk_chain(const uint8_t *b, size_t len, struct chain *c)
{
	size_t off = 40, l;
	uint8_t next = b[6], type;

	memset(c, 0, sizeof(*c));
	for (;;) {
		c->last = next;
		if (next != 0 && next != 43 && next != 44 && next != 51 && next != 60) {
			c->l4_off = off;
			return;
		}
		if (len < off + 2) {
			c->stop = DECODE_TRUNCATED_IP;
			return;
		}
		l = next == 44 ? 8 : next == 51 ? (b[off + 1] + 2u) * 4 : (b[off + 1] + 1u) * 8;
		if (len < off + l) {
			c->stop = DECODE_TRUNCATED_IP;
			return;
		}
		type = next;
		next = b[off];
		if (c->n < EVENT_EXT_TYPES)
			c->types[c->n] = type;
		c->n++;
		c->len += l;
		if (type == 44 && (b[off + 2] << 8 | b[off + 3]) >> 3) {
			c->last = next;
			c->stop = DECODE_FRAGMENT;
			return;
		}
		off += l;
	}
}

/* The fields only TCP has: 0 in an event of any other transport. */
static bool no_tcp_only_fields(const struct pkt_headers *h)
{
	static const struct tcp_opts none;

	return !memcmp(&h->opts, &none, sizeof(none)) && h->seq == 0 && h->ack == 0 &&
	       h->data_offset == 0 && h->flags == 0 && h->window == 0 && h->urgent == 0;
}

/* No transport field at all: a partial event, or a protocol pktrace does not read; but a TCP
 * header whose data offset is below 5 keeps its ports and data offset (check_l4_at reads them
 * against the bytes). */
static bool no_tcp_fields(const struct pkt_headers *h)
{
	struct pkt_headers c = *h;

	if (h->l4_error == DECODE_BAD_DATA_OFFSET) {
		if (h->data_offset >= 5)
			return false;
		c.src_port = c.dst_port = 0;
		c.data_offset = 0;
	}
	return no_tcp_only_fields(&c) && c.src_port == 0 && c.dst_port == 0 && c.checksum == 0 &&
	       c.udp_len == 0 && c.icmp_type == 0 && c.icmp_code == 0 && c.icmp_id == 0 &&
	       c.icmp_seq == 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * The options against the header's option bytes b[0..n), walked here apart from the decoder: a
 * kind's fields are those of its first well-formed occurrence; a bad length ends the walk.
 */
static void check_opts(const uint8_t *b, size_t n, const struct tcp_opts *o)
{
	static const uint8_t fixed[256] = {[2] = 4, [3] = 3, [4] = 2, [8] = 10};
	size_t i = 0, ord = 0, unk = 0, l;
	uint8_t seen = 0, bit;
	bool bad = false, tfo;

	CHECK(o->order_n <= TCP_OPTS_MAX_LEN && o->sack_n <= TCP_OPTS_SACK_MAX &&
	      o->tfo_len <= TCP_OPTS_COOKIE_MAX && o->unknown_n <= TCP_OPTS_UNKNOWN_MAX);
	while (i < n) {
		if (b[i] <= 1) {
			CHECK(ord < o->order_n && o->order[ord++] == b[i]);
			if (b[i] == 0) {
				seen |= TCP_OPT_EOL;
				break;
			}
			i++;
			continue;
		}
		if (n - i < 2 || b[i + 1] < 2 || b[i + 1] > n - i) {
			bad = true;
			break;
		}
		l = b[i + 1];
		tfo = b[i] == 34 || (b[i] == 254 && l >= 4 && b[i + 2] == 0xf9 && b[i + 3] == 0x89);
		bit = b[i] == 2	  ? TCP_OPT_MSS
		      : b[i] == 3 ? TCP_OPT_WSCALE
		      : b[i] == 4 ? TCP_OPT_SACK_PERM
		      : b[i] == 5 ? TCP_OPT_SACK
		      : b[i] == 8 ? TCP_OPT_TS
		      : tfo	  ? TCP_OPT_TFO
				  : 0;
		if (bit && ((seen & bit) || (fixed[b[i]] && l != fixed[b[i]]) ||
			    (bit == TCP_OPT_SACK && (l == 2 || (l - 2) % 8)))) {
			bad = true;
		} else if (bit) {
			seen |= bit;
			CHECK(ord < o->order_n && o->order[ord++] == (tfo ? 34 : b[i]));
			if (bit == TCP_OPT_MSS)
				CHECK(o->mss == (b[i + 2] << 8 | b[i + 3]));
			if (bit == TCP_OPT_WSCALE)
				CHECK(o->wscale == b[i + 2]);
			if (bit == TCP_OPT_TS)
				CHECK(o->ts_val == be32(b + i + 2) && o->ts_ecr == be32(b + i + 6));
			if (bit == TCP_OPT_SACK)
				CHECK(o->sack_n == (l - 2) / 8 &&
				      o->sack[0][0] == be32(b + i + 2) &&
				      o->sack[o->sack_n - 1][1] == be32(b + i + l - 4));
			if (bit == TCP_OPT_TFO)
				CHECK(o->tfo_len == l - (b[i] == 34 ? 2 : 4) &&
				      !memcmp(o->tfo_cookie, b + i + l - o->tfo_len, o->tfo_len));
		} else {
			CHECK(unk < o->unknown_n && o->unknown[unk].kind == b[i] &&
			      o->unknown[unk].len == l);
			CHECK(ord < o->order_n && o->order[ord++] == b[i]);
			unk++;
		}
		i += l;
	}
	CHECK(o->present == seen && o->malformed == bad && o->order_n == ord &&
	      o->unknown_n == unk);
	CHECK(tcp_opts_shown(o) == ((seen & ~TCP_OPT_EOL) || unk || bad));
}

/* The TCP fields against the bytes at off. */
static void check_tcp_at(const uint8_t *b, size_t len, size_t off, const struct pkt_headers *h)
{
	CHECK(h->protocol == IPPROTO_TCP);
	CHECK(h->data_offset >= 5 && h->data_offset <= 15);
	CHECK(off + (size_t)h->data_offset * 4 <= len);
	CHECK(h->flags <= 0x1ff);
	CHECK(h->src_port == (b[off] << 8 | b[off + 1]));
	CHECK(h->dst_port == (b[off + 2] << 8 | b[off + 3]));
	CHECK(h->seq == ((uint32_t)b[off + 4] << 24 | (uint32_t)b[off + 5] << 16 |
			 (uint32_t)b[off + 6] << 8 | b[off + 7]));
	CHECK(h->data_offset == b[off + 12] >> 4);
	CHECK(h->flags == (b[off + 13] | (b[off + 12] & 1) << 8));
	CHECK(h->urgent == (b[off + 18] << 8 | b[off + 19]));
	check_opts(b + off + 20, (size_t)h->data_offset * 4 - 20, &h->opts);
}

/* ---- Transports other than TCP, and the IP header fields ---- */

static bool is_udp(uint8_t p)
{
	return p == IPPROTO_UDP || p == IPPROTO_UDPLITE;
}

static bool is_icmp(uint8_t p)
{
	return p == IPPROTO_ICMP || p == IPPROTO_ICMPV6;
}

/* A UDP header (8 bytes) or an ICMP one (4, or 8 with the id and sequence) against b[off..len). */
static void check_udp_icmp_at(const uint8_t *b, size_t len, size_t off,
			      const struct pkt_headers *h)
{
	size_t have = len > off ? len - off : 0;

	CHECK(no_tcp_only_fields(h));
	if (h->l4_error) {
		CHECK(h->l4_error == DECODE_TRUNCATED_L4 && no_tcp_fields(h));
		CHECK(have < (is_udp(h->protocol) ? 8u : 4u));
		return;
	}
	if (is_udp(h->protocol)) {
		CHECK(have >= 8);
		CHECK(h->src_port == (b[off] << 8 | b[off + 1]));
		CHECK(h->dst_port == (b[off + 2] << 8 | b[off + 3]));
		CHECK(h->udp_len == (b[off + 4] << 8 | b[off + 5]));
		CHECK(h->checksum == (b[off + 6] << 8 | b[off + 7]));
		CHECK(h->icmp_type == 0 && h->icmp_code == 0 && h->icmp_id == 0 && h->icmp_seq == 0);
		return;
	}
	CHECK(have >= 4);
	CHECK(h->src_port == 0 && h->dst_port == 0 && h->udp_len == 0);
	CHECK(h->icmp_type == b[off] && h->icmp_code == b[off + 1]);
	CHECK(h->checksum == (b[off + 2] << 8 | b[off + 3]));
	CHECK(h->icmp_id == (have >= 8 ? b[off + 4] << 8 | b[off + 5] : 0));
	CHECK(h->icmp_seq == (have >= 8 ? b[off + 6] << 8 | b[off + 7] : 0));
}

/* The transport header at off, by the protocol the headers lead to (already checked). */
static void check_l4_at(const uint8_t *b, size_t len, size_t off, const struct pkt_headers *h)
{
	if (h->protocol == IPPROTO_TCP) {
		if (h->l4_error)
			CHECK((h->l4_error == DECODE_TRUNCATED_TCP ||
			       h->l4_error == DECODE_BAD_DATA_OFFSET) && no_tcp_fields(h));
		if (h->l4_error == DECODE_BAD_DATA_OFFSET)
			CHECK(len >= off + 20 && h->src_port == (b[off] << 8 | b[off + 1]) &&
			      h->dst_port == (b[off + 2] << 8 | b[off + 3]) &&
			      h->data_offset == b[off + 12] >> 4);
		else if (!h->l4_error)
			check_tcp_at(b, len, off, h);
	} else if (is_udp(h->protocol) || is_icmp(h->protocol)) {
		check_udp_icmp_at(b, len, off, h);
	} else {
		/* GRE, ESP, no next header...: an event with no transport fields and no error. */
		CHECK(h->l4_error == 0 && no_tcp_fields(h));
	}
}

/* Every IP header field against the bytes; the next header is the fixed header's. */
static void check_ip_fields(const uint8_t *b, const struct pkt_headers *h)
{
	if (h->family == AF_INET6) {
		CHECK(h->ip_version == 6 && h->ihl == 0 && h->ip_id == 0 && h->ip_flags == 0 &&
		      h->frag_off == 0 && h->ip_checksum == 0);
		CHECK(h->tos == (uint8_t)((b[0] << 4) | (b[1] >> 4)));
		CHECK(h->flow_label == ((uint32_t)(b[1] & 0x0f) << 16 | b[2] << 8 | b[3]));
		CHECK(h->ip_len == (b[4] << 8 | b[5]) && h->next_header == b[6] && h->ttl == b[7]);
		return;
	}
	CHECK(h->ip_version == 4 && h->ihl == (b[0] & 0x0f) && h->tos == b[1] && h->flow_label == 0);
	CHECK(h->ip_len == (b[2] << 8 | b[3]) && h->ip_id == (b[4] << 8 | b[5]));
	CHECK(h->ip_flags == b[6] >> 5 && h->frag_off == ((b[6] & 0x1f) << 8 | b[7]));
	CHECK(h->ttl == b[8] && h->next_header == b[9] && h->protocol == b[9]);
	CHECK(h->ip_checksum == (b[10] << 8 | b[11]));
}

/* The transport bytes the kernel copies for h (l4_header_len in pktrace.bpf.c): TCP's whole
 * header, 8 of UDP or ICMP or fewer from a short packet, none of any other protocol. */
static size_t kernel_l4_len(const struct pkt_headers *h, size_t len, size_t off)
{
	size_t have = len > off ? len - off : 0;

	if (h->protocol == IPPROTO_TCP)
		return (size_t)h->data_offset * 4;
	if (is_udp(h->protocol) || is_icmp(h->protocol))
		return have < 8 ? have : 8;
	return 0;
}

/* The socket class a record says (pktrace.h: pkt_record.sk_proto), from cap's low bits. */
static const uint8_t sk_protos[4] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_RAW };

/* A raw record's l4_proto, by the flags byte's high nibble: transports, then extension headers
 * (a chain that ends in one is no record the kernel writes). */
static const uint8_t l4_protos[16] = {
	IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6, IPPROTO_ICMP, IPPROTO_UDPLITE, IPPROTO_ESP,
	IPPROTO_NONE, IPPROTO_GRE, IPPROTO_SCTP, IPPROTO_RAW, IPPROTO_HOPOPTS, IPPROTO_ROUTING,
	IPPROTO_FRAGMENT, IPPROTO_AH, IPPROTO_DSTOPTS, 0x8f,
};

static bool is_ext(uint8_t p)
{
	return p == 0 || p == 43 || p == 44 || p == 51 || p == 60;
}

/* The events a packet gives: its IP event, and its transport's (for a partial packet its
 * socket's, a raw socket's by the protocol), never two transports. */
static event_mask check_packet_events(const struct pkt_event *e)
{
	const struct pkt_headers *h = &e->hdr;
	event_mask m = decode_packet_events(e), want;
	uint8_t p = h->l4_error && e->sk_proto != IPPROTO_RAW ? e->sk_proto : h->protocol;

	want = EVENT_BIT(h->family == AF_INET6 ? EVENT_NET_PACKET_IPV6 : EVENT_NET_PACKET_IPV4);
	if (p == IPPROTO_TCP)
		want |= EVENT_BIT(EVENT_NET_PACKET_TCP);
	else if (is_udp(p))
		want |= EVENT_BIT(EVENT_NET_PACKET_UDP);
	else if (is_icmp(p))
		want |= EVENT_BIT(h->family == AF_INET6 ? EVENT_NET_PACKET_ICMPV6
							: EVENT_NET_PACKET_ICMP);
	CHECK(m == want);
	CHECK((m & ~event_packet_events()) == 0);
	return m;
}

/* A raw packet's event against its bytes, without walking them as the decoder does. */
static void check_headers(const uint8_t *b, size_t len, const struct pkt_headers *h,
			  struct chain *c)
{
	static const uint8_t zero[12];
	size_t off;

	CHECK(h->family == AF_INET || h->family == AF_INET6);
	CHECK(len >= 1 && (b[0] >> 4) == (h->family == AF_INET ? 4 : 6));
	CHECK(h->l4_error < DECODE__MAX && h->l4_error != DECODE_BAD_RECORD &&
	      h->l4_error != DECODE_NO_L4);
	CHECK(h->l4_error ? no_tcp_fields(h) : true);
	if (h->family == AF_INET6) {
		CHECK(len >= 40);
		CHECK(memcmp(h->src_addr, b + 8, 16) == 0 && memcmp(h->dst_addr, b + 24, 16) == 0);
		walk_chain(b, len, c);
		CHECK(h->ext_count == (c->n < 255 ? c->n : 255));
		CHECK(h->ext_len == c->len);
		CHECK(h->ext_types_n == (c->n < EVENT_EXT_TYPES ? c->n : EVENT_EXT_TYPES));
		CHECK(memcmp(h->ext_types, c->types, h->ext_types_n) == 0);
		check_ip_fields(b, h);
		if (c->stop) {
			CHECK(h->l4_error == c->stop && no_tcp_fields(h));
			CHECK(c->stop == DECODE_TRUNCATED_IP ? h->protocol == 255
							     : h->protocol == c->last);
			return;
		}
		CHECK(h->protocol == c->last);
		check_l4_at(b, len, c->l4_off, h);
		return;
	}
	CHECK(h->ext_count == 0 && h->ext_len == 0 && h->ext_types_n == 0);
	off = (size_t)(b[0] & 0x0f) * 4;
	CHECK(off >= 20 && off <= len);
	CHECK(memcmp(h->src_addr, b + 12, 4) == 0 && memcmp(h->dst_addr, b + 16, 4) == 0);
	CHECK(memcmp(h->src_addr + 4, zero, 12) == 0 && memcmp(h->dst_addr + 4, zero, 12) == 0);
	check_ip_fields(b, h);
	c->l4_off = off;
	c->last = b[9];
	if ((b[6] << 8 | b[7]) & 0x1fff)
		CHECK(h->l4_error == DECODE_FRAGMENT && no_tcp_fields(h));
	else
		check_l4_at(b, len, off, h);
}

/* The table's header line once, before any input: it too must fit exactly and stay inside cap. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char line[BIG_CAP], small[BIG_CAP + CANARY_LEN];
	size_t n = format_table_header(line, sizeof(line)), i;

	(void)argc;
	(void)argv;
	check_table_line(line, n);
	CHECK(format_table_header(small, n) == n && memcmp(small, line, n) == 0);
	memset(small, CANARY_BYTE, sizeof(small));
	CHECK(format_table_header(small, n - 1) == 0);
	for (i = n - 1; i < n - 1 + CANARY_LEN; i++)
		CHECK((unsigned char)small[i] == CANARY_BYTE);
	return 0;
}

/* The IP header's fields and those of UDP and ICMP. */
static bool same_ip_l4_fields(const struct pkt_headers *a, const struct pkt_headers *b)
{
	return a->ip_version == b->ip_version && a->ihl == b->ihl && a->tos == b->tos &&
	       a->ip_flags == b->ip_flags && a->ip_len == b->ip_len && a->ip_id == b->ip_id &&
	       a->frag_off == b->frag_off && a->ttl == b->ttl && a->next_header == b->next_header &&
	       a->ip_checksum == b->ip_checksum && a->flow_label == b->flow_label &&
	       a->udp_len == b->udp_len && a->icmp_type == b->icmp_type &&
	       a->icmp_code == b->icmp_code && a->icmp_id == b->icmp_id &&
	       a->icmp_seq == b->icmp_seq;
}

/* Every field of two decoded header sets (not memcmp: struct padding is not a field). */
static bool same_headers(const struct pkt_headers *a, const struct pkt_headers *b)
{
	return a->family == b->family && !memcmp(a->src_addr, b->src_addr, 16) &&
	       !memcmp(a->dst_addr, b->dst_addr, 16) && a->protocol == b->protocol &&
	       a->src_port == b->src_port && a->dst_port == b->dst_port && a->seq == b->seq &&
	       a->ack == b->ack && a->data_offset == b->data_offset && a->flags == b->flags &&
	       a->window == b->window && a->checksum == b->checksum && a->urgent == b->urgent &&
	       a->l4_error == b->l4_error && a->ext_count == b->ext_count &&
	       a->ext_len == b->ext_len && a->ext_types_n == b->ext_types_n &&
	       !memcmp(a->ext_types, b->ext_types, a->ext_types_n) &&
	       !memcmp(&a->opts, &b->opts, sizeof(a->opts)) && same_ip_l4_fields(a, b);
}

/* The owner and record fields from the prefix, as the kernel side would write them. */
static void base_record(struct pkt_record *r, const uint8_t *pre, const struct pkt_event *ref,
			uint64_t boot_to_real)
{
	memset(r, 0, sizeof(*r));
	r->ts_ns = ref->timestamp_ns - boot_to_real; /* wraps back in decode_record() */
	r->owner.cgroup_id = ref->proc.cgroup_id;
	r->owner.pid = ref->proc.pid;
	r->owner.tid = ref->proc.tid;
	r->owner.ppid = ref->proc.ppid;
	r->owner.uid = ref->proc.uid;
	r->owner.uts_key = (uint64_t)ref->proc.pid << 32 ^ ref->proc.uid;
	memcpy(r->owner.comm, pre + 39, PKT_COMM_LEN);
	r->pkt_len = ref->packet_len;
	r->ifindex = ref->proc.tid ^ ref->proc.ppid;
	r->direction = pre[0];
	r->kind = PKT_REC_PACKET;
	memcpy(r->ifname, pre + 55, PKT_IFNAME_LEN);
}

/* decode_record() on the first size bytes of r, from an exactly sized heap block. */
static int run_record(const struct pkt_record *r, size_t size, struct pkt_event *e,
		      uint64_t boot_to_real, uint32_t *ifindex, uint64_t *uts_key)
{
	size_t copy = size < sizeof(*r) ? size : sizeof(*r);
	uint8_t *rec = malloc(size ? size : 1);
	int err;

	CHECK(rec != NULL);
	memset(rec, 0, size);
	memcpy(rec, r, copy);
	memset(e, 0x5a, sizeof(*e));
	err = decode_record(rec, size, boot_to_real, e, ifindex, uts_key);
	free(rec);
	CHECK(err <= 0 && err > -DECODE__MAX);
	return err;
}

/*
 * The record the kernel side writes for a packet the raw decoder made an event of (ref), given
 * to decode_record() in the shape select bits 4-6 pick:
 *   0-3: well-formed, cut after hdr_len bytes (bit 4 clear) or full-sized (bit 4 set; with the
 *        headers whole, a --snaplen record: the packet's bytes after them in snap[]);
 *   4: hdr_len claims one byte more than the record holds;  5: hdr_len 0xffff;
 *   6: the record is cut inside its fixed part;  7: hdr_len PKT_HDR_MAX + 1 with room for it.
 * A well-formed record must give the event ref (a partial one stays partial, maybe for another
 * reason); the others must be refused as DECODE_BAD_RECORD.
 */
static void check_kernel_record(const uint8_t *pre, const uint8_t *pkt, size_t len,
				const struct chain *c, const struct pkt_event *ref)
{
	const size_t fixed = offsetof(struct pkt_record, hdr);
	const uint64_t boot_to_real = 1764145200000000000ull;
	const struct pkt_headers *h = &ref->hdr;
	unsigned int shape = pre[1] >> 4 & 7;
	uint32_t ifindex = 0x5a5a5a5a;
	uint64_t uts_key = 0x5a5a5a5a;
	struct pkt_record r;
	struct pkt_event e;
	bool no_l4;
	size_t n, size, l4;
	int err;

	/* A chain longer than a record's 16-bit length: the kernel side's problem, not this one. */
	if (h->ext_len > 0xffff)
		return;
	base_record(&r, pre, ref, boot_to_real);
	r.l3_proto = pkt[0] >> 4;
	r.sk_proto = ref->sk_proto;
	r.l4_proto = c->last;
	/* The kernel flags a header it cannot reach; a short UDP or ICMP one it copies as is. */
	no_l4 = h->l4_error && h->l4_error != DECODE_TRUNCATED_L4;
	l4 = no_l4 ? 0 : kernel_l4_len(h, len, c->l4_off);
	if (h->family == AF_INET) {
		n = no_l4 ? (size_t)(pkt[0] & 0x0f) * 4 : c->l4_off + l4;
		memcpy(r.hdr, pkt, n);
	} else {
		memcpy(r.hdr, pkt, 40);
		n = 40;
		memcpy(r.hdr + n, pkt + c->l4_off, l4);
		n += l4;
		memcpy(r.hdr + n, h->ext_types, h->ext_types_n);
		n += h->ext_types_n;
		r.ext_count = h->ext_count;
		r.ext_len = (uint16_t)h->ext_len;
	}
	CHECK(n <= PKT_HDR_MAX);
	r.flags = no_l4 ? PKT_F_NO_L4 : 0;
	r.hdr_len = (uint16_t)n;
	size = fixed + n;
	switch (shape) {
	case 4:
		r.hdr_len++;
		break;
	case 5:
		r.hdr_len = 0xffff;
		break;
	case 6:
		size = pre[2] % fixed;
		break;
	case 7:
		r.hdr_len = PKT_HDR_MAX + 1;
		size = fixed + r.hdr_len;
		break;
	default:
		if (shape & 1)
			size = sizeof(r);
		/* Full-sized with the headers whole: a --snaplen record, the payload after them. */
		if ((shape & 1) && !no_l4 && !r.ext_count && n < len) {
			r.snap_len = (uint16_t)(len - n < PKT_SNAP_MAX ? len - n : PKT_SNAP_MAX);
			memcpy(r.snap, pkt + n, r.snap_len);
			size = offsetof(struct pkt_record, snap) + r.snap_len;
		}
	}
	err = run_record(&r, size, &e, boot_to_real, &ifindex, &uts_key);
	if (shape >= 4) {
		CHECK(err == -DECODE_BAD_RECORD);
		return;
	}
	CHECK(err == 0);
	if (r.snap_len) {
		/* -w writes the packet's first n + snap_len bytes, as they were on the wire. */
		struct pkt_bytes b;

		pkt_bytes_of_record(&r, size, &b);
		CHECK(b.len == n && b.snap_len == r.snap_len && !memcmp(b.data, pkt, n) &&
		      !memcmp(b.snap, pkt + n, b.snap_len));
	}
	CHECK(e.sk_proto == ref->sk_proto);
	if (no_l4) {
		/* The record cannot say why: the kernel only flags it, or the IP header tells. */
		CHECK(e.hdr.l4_error != 0 && no_tcp_fields(&e.hdr));
		CHECK(e.hdr.family == h->family && !memcmp(e.hdr.src_addr, h->src_addr, 16) &&
		      !memcmp(e.hdr.dst_addr, h->dst_addr, 16));
		CHECK(e.hdr.ext_count == h->ext_count && e.hdr.ext_len == h->ext_len &&
		      e.hdr.ext_types_n == h->ext_types_n &&
		      !memcmp(e.hdr.ext_types, h->ext_types, h->ext_types_n));
	} else {
		CHECK(same_headers(&e.hdr, h));
	}
	CHECK(e.timestamp_ns == ref->timestamp_ns && e.egress == ref->egress &&
	      e.packet_len == ref->packet_len);
	CHECK(e.proc.pid == ref->proc.pid && e.proc.tid == ref->proc.tid &&
	      e.proc.ppid == ref->proc.ppid && e.proc.uid == ref->proc.uid &&
	      e.proc.cgroup_id == ref->proc.cgroup_id);
	CHECK(!memcmp(e.proc.comm, ref->proc.comm, sizeof(e.proc.comm)));
	CHECK(!memcmp(e.ifname, ref->ifname, sizeof(e.ifname)));
	CHECK(ifindex == r.ifindex && uts_key == r.owner.uts_key);
}

/* A record straight from the input: whatever its fields say, a valid event or a clean refusal. */
static bool check_raw_record(const uint8_t *pre, const uint8_t *pkt, size_t len,
			     const struct pkt_event *ref, struct pkt_event *e)
{
	struct pkt_record r;
	uint32_t ifindex;
	uint64_t uts_key;
	size_t n = len < PKT_HDR_MAX ? len : PKT_HDR_MAX, types_off, want_n;
	int err;

	base_record(&r, pre, ref, 0);
	memcpy(r.hdr, pkt, n);
	r.hdr_len = (uint16_t)n;
	r.flags = pre[71];
	r.ext_count = pre[72];
	r.ext_len = (uint16_t)le(pre + 73, 2);
	r.sk_proto = ref->sk_proto;
	r.l4_proto = l4_protos[pre[71] >> 4];
	err = run_record(&r, offsetof(struct pkt_record, hdr) + n, e, 0, &ifindex, &uts_key);
	CHECK(err != -DECODE_FRAGMENT && err != -DECODE_NO_L4 && err != -DECODE_TRUNCATED_TCP &&
	      err != -DECODE_BAD_DATA_OFFSET && err != -DECODE_TRUNCATED_L4);
	/* A chain the kernel walked to an extension header: no record it writes. */
	if (n >= 40 && pkt[0] >> 4 == 6 && r.ext_count && !(r.flags & PKT_F_NO_L4) &&
	    is_ext(r.l4_proto))
		CHECK(err == -DECODE_BAD_RECORD);
	if (err)
		return false;
	CHECK(e->sk_proto == r.sk_proto);
	CHECK(n >= 1 && (pkt[0] >> 4 == 4 || pkt[0] >> 4 == 6));
	check_ip_fields(r.hdr, &e->hdr);
	if (r.flags & PKT_F_NO_L4)
		CHECK(e->hdr.l4_error != 0);
	if (pkt[0] >> 4 == 4) {
		CHECK(r.ext_count == 0 && r.ext_len == 0);
		CHECK(e->hdr.ext_count == 0 && e->hdr.ext_types_n == 0);
		if (e->hdr.l4_error == DECODE_FRAGMENT || e->hdr.l4_error == DECODE_NO_L4)
			CHECK(no_tcp_fields(&e->hdr));
		else
			check_l4_at(r.hdr, n, (size_t)(pkt[0] & 0x0f) * 4, &e->hdr);
		return true;
	}
	CHECK(e->hdr.ext_count == r.ext_count && e->hdr.ext_len == r.ext_len);
	CHECK(r.ext_count == 0 ? r.ext_len == 0 : r.ext_len != 0 || (r.flags & PKT_F_NO_L4));
	want_n = r.ext_count < PKT_EXT_TYPES ? r.ext_count : PKT_EXT_TYPES;
	/* The transport the record says: the fixed header's, the kernel's behind a chain. */
	if (r.flags & PKT_F_NO_L4)
		CHECK(e->hdr.protocol == (r.ext_count ? IPPROTO_RAW : r.hdr[6]) &&
		      e->hdr.l4_error == DECODE_NO_L4 && no_tcp_fields(&e->hdr));
	else
		CHECK(e->hdr.protocol == (r.ext_count ? r.l4_proto : r.hdr[6]));
	/* The transport header is before the types: TCP's as long as its data offset says,
	 * the others' all the bytes before the types. */
	if (e->hdr.protocol == IPPROTO_TCP && !(r.flags & PKT_F_NO_L4)) {
		if (e->hdr.l4_error) {
			/* Cut: where the types start is unknown, so none are listed. */
			CHECK((e->hdr.l4_error == DECODE_TRUNCATED_TCP ||
			       e->hdr.l4_error == DECODE_BAD_DATA_OFFSET) && no_tcp_fields(&e->hdr));
			CHECK(e->hdr.ext_types_n == 0);
			return true;
		}
		check_tcp_at(r.hdr, n, 40, &e->hdr);
		types_off = 40 + (size_t)e->hdr.data_offset * 4;
	} else if (!(r.flags & PKT_F_NO_L4)) {
		CHECK(want_n <= n - 40);
		types_off = n - want_n;
		check_l4_at(r.hdr, types_off, 40, &e->hdr);
	} else {
		types_off = 40;
	}
	CHECK(e->hdr.ext_types_n == want_n);
	CHECK(types_off + want_n <= n);
	CHECK(!memcmp(e->hdr.ext_types, r.hdr + types_off, want_n));
	CHECK(want_n == 0 || e->hdr.ext_types[0] == r.hdr[6]);
	return true;
}

/* A table line (options cut off) ends with the chain and the reason, exactly. */
static void check_table_tail(const char *table, size_t n, const struct pkt_headers *h)
{
	char want[96];
	size_t k = 0;

	if (h->ext_count)
		k += (size_t)snprintf(want + k, sizeof(want) - k, " ext:%u%s/%uB", h->ext_count,
				      h->ext_count == 255 ? "+" : "", h->ext_len);
	if (h->l4_error)
		k += (size_t)snprintf(want + k, sizeof(want) - k, " (%s)",
				      decode_strerror(h->l4_error));
	snprintf(want + k, sizeof(want) - k, "\n");
	k = strlen(want);
	CHECK(n > k && memcmp(table + n - k, want, k) == 0 && table[n - k - 1] != ' ');
}

/* Both printers on one event: bounds, a valid JSON line with the right fields, a safe table line. */
static void check_printers(const uint8_t *pre, struct pkt_event *e)
{
	static char json[BIG_CAP], table[BIG_CAP];
	const struct pkt_headers *h = &e->hdr;
	char want[96];
	const char *opts;
	size_t n, k;
	bool shown;

	n = check_printer(format_json, e, pre[2], json);
	check_json_line(json, n);
	snprintf(want, sizeof(want), "%u", h->protocol);
	check_json_field(json, n, "protocol", want);
	snprintf(want, sizeof(want), "%u", h->src_port);
	check_json_field(json, n, "src_port", want);
	check_json_field(json, n, "direction", e->egress ? "\"egress\"" : "\"ingress\"");
	/* Keys are followed by a colon, string values never are: a name cannot fake these. */
	CHECK(!memmem(json, n, "\"ipv6_ext\":", 11) == !h->ext_count);
	if (h->ext_count) {
		snprintf(want, sizeof(want), "\"ipv6_ext\":{\"count\":%u,\"length\":%u,\"types\":[",
			 h->ext_count, h->ext_len);
		CHECK(memmem(json, n, want, strlen(want)) != NULL);
	}
	CHECK(!memmem(json, n, "\"decode_error\":", 15) == !h->l4_error);
	CHECK(!memmem(json, n, PROTO_TCP_ARG, sizeof(PROTO_TCP_ARG) - 1) == !!h->l4_error);
	if (!h->l4_error) {
		snprintf(want, sizeof(want), "%u", h->data_offset);
		check_json_field(json, n, "dataOffset", want);
		snprintf(want, sizeof(want), "%u", h->seq);
		check_json_field(json, n, "seq", want);
		check_json_field(json, n, "SYN", h->flags & TCP_FLAG_SYN ? "true" : "false");
		check_json_field(json, n, "NS", h->flags & TCP_FLAG_NS ? "true" : "false");
	}
	shown = !h->l4_error && tcp_opts_shown(&h->opts);
	CHECK(!memmem(json, n, TCP_OPTIONS_ARG, sizeof(TCP_OPTIONS_ARG) - 1) == !shown);
	CHECK(!memmem(json, n, "\"malformed\":true", 16) == !(shown && h->opts.malformed));
	if (shown && (h->opts.present & TCP_OPT_MSS)) {
		snprintf(want, sizeof(want), "%u", h->opts.mss);
		check_json_field(json, n, "mss", want);
	}
	if (shown && (h->opts.present & TCP_OPT_TS)) {
		snprintf(want, sizeof(want), "%u", h->opts.ts_ecr);
		check_json_field(json, n, "ts_ecr", want);
	}
	CHECK(!memmem(json, n, "\"mss\":", 6) == !(shown && (h->opts.present & TCP_OPT_MSS)));

	n = check_printer(format_table, e, pre[2], table);
	check_table_line(table, n);
	/*
	 * The options come last: " options [...]" (or, cut by a snapshot length, " options [...
	 * [|tcp]"). A malformed option or an unknown kind has them printed as tcpdump walks them,
	 * which may give up on one: " options [...[bad opt]" ends the line there. A comm may hold
	 * " options [" too, but the options never do: the last one is theirs. A line without
	 * options ends with the length, the chain (B) or the reason (")").
	 */
	opts = NULL;
	for (k = 0; k + 10 <= n; k++)
		if (!memcmp(table + k, " options [", 10))
			opts = table + k;
	CHECK(shown ? opts != NULL : n >= 2 && table[n - 2] != ']');
	if (shown) {
		k = (size_t)(table + n - opts);
		if (k > 12 && (memcmp(table + n - 10, "[bad opt]\n", 10) == 0 ||
			       memcmp(table + n - 11, "[bad opt]]\n", 11) == 0)) {
			/* tcpdump's walk gave up: its "[bad opt]" ends the options, with "]" after
			 * it when another option came first. Only options kept raw are walked so,
			 * but an MPTCP option or an experiment a cut ended. */
			const char *g = memmem(opts, k, "[bad opt]", 9);

			CHECK(h->opts.malformed || h->opts.unknown_n);
			CHECK(g == table + n - 10 || (g == table + n - 11 &&
						      memchr(opts, ',', (size_t)(g - opts)) != NULL));
		} else if (h->opts.cut) {
			/* Cut by the snapshot length (-r): tcpdump's mark, no closing bracket. */
			CHECK(k > 8 && memcmp(table + n - 8, " [|tcp]\n", 8) == 0);
		} else {
			CHECK(k > 2 && memcmp(table + n - 2, "]\n", 2) == 0);
			CHECK(!memmem(opts, k, "[bad opt]", 9));
		}
		/* What comes before them ends as a line without options would. */
		n -= k - 1;
		table[n - 1] = '\n';
	}
	check_table_tail(table, n, h);
}

/* ---- The UDP, ICMP, ICMPv6, IPv4 and IPv6 events' lines ---- */

/* A JSON arg opening, '{"name":"<name>","type":"<type>"', where the event says it is. */
static bool has_arg(const char *json, size_t n, const struct event_def *def, size_t i)
{
	char want[96];
	int k = snprintf(want, sizeof(want), "{\"name\":\"%s\",\"type\":\"%s\"",
			 def->args[i].name, def->args[i].type);

	return memmem(json, n, want, (size_t)k) != NULL;
}

static void check_proto_printers(const uint8_t *pre, struct pkt_event *e)
{
	static char json[BIG_CAP], table[BIG_CAP];
	const struct pkt_headers *h = &e->hdr;
	const struct event_def *def = &events[e->event];
	bool ip = e->event == EVENT_NET_PACKET_IPV4 || e->event == EVENT_NET_PACKET_IPV6;
	bool v6 = h->family == AF_INET6;
	char want[192], tc[64];
	size_t n, k;

	n = check_printer(format_json, e, pre[2], json);
	check_json_line(json, n);
	snprintf(want, sizeof(want), ",\"eventName\":\"%s\",", def->name);
	CHECK(memmem(json, n, want, strlen(want)) != NULL);
	CHECK(def->n_args == 2 && has_arg(json, n, def, 0));
	snprintf(want, sizeof(want), "%u", h->protocol);
	check_json_field(json, n, "protocol", want);
	check_json_field(json, n, "direction", e->egress ? "\"egress\"" : "\"ingress\"");
	CHECK(!memmem(json, n, "\"ipv6_ext\":", 11) == !h->ext_count);
	CHECK(!memmem(json, n, PROTO_TCP_ARG, sizeof(PROTO_TCP_ARG) - 1));
	CHECK(!memmem(json, n, TCP_OPTIONS_ARG, sizeof(TCP_OPTIONS_ARG) - 1));
	/* The IP events show their header whatever the transport; the others need theirs. */
	CHECK(!memmem(json, n, "\"decode_error\":", 15) == (ip || !h->l4_error));
	CHECK(has_arg(json, n, def, 1) == (ip || !h->l4_error));
	/* Each arg's value as one run: a key of the metadata (ipv6_ext's "length") or a string
	 * (whose quotes are escaped) cannot stand in for it. */
	if (ip && v6)
		k = (size_t)snprintf(want, sizeof(want), "{\"version\":6,\"trafficClass\":%u,"
				     "\"flowLabel\":%u,\"length\":%u,\"nextHeader\":\"",
				     h->tos, h->flow_label, h->ip_len);
	else if (ip)
		k = (size_t)snprintf(want, sizeof(want), "{\"version\":4,\"IHL\":%u,\"TOS\":%u,"
				     "\"length\":%u,\"id\":%u,\"flags\":%u,\"fragOffset\":%u,"
				     "\"TTL\":%u,\"protocol\":\"", h->ihl, h->tos, h->ip_len,
				     h->ip_id, h->ip_flags, h->frag_off, h->ttl);
	else if (h->l4_error)
		k = 0;
	else if (e->event == EVENT_NET_PACKET_UDP)
		k = (size_t)snprintf(want, sizeof(want), "{\"srcPort\":%u,\"dstPort\":%u,"
				     "\"length\":%u,\"checksum\":%u}}]}\n", h->src_port,
				     h->dst_port, h->udp_len, h->checksum);
	else if (fmt_icmp_typecode(tc, h->family, h->icmp_type, h->icmp_code) && v6)
		k = (size_t)snprintf(want, sizeof(want), "{\"typeCode\":\"%s\",\"checksum\":%u}}]}\n",
				     tc, h->checksum);
	else
		k = (size_t)snprintf(want, sizeof(want), "{\"typeCode\":\"%s\",\"checksum\":%u,"
				     "\"id\":%u,\"seq\":%u}}]}\n", tc, h->checksum, h->icmp_id,
				     h->icmp_seq);
	CHECK(k < sizeof(want));
	CHECK(k == 0 || memmem(json, n, want, k) != NULL);

	n = check_printer(format_table, e, pre[2], table);
	check_table_line(table, n);
	if (ip) {
		/* The IP header's rest comes last, its length field at the very end. */
		k = (size_t)snprintf(want, sizeof(want), " length %u\n", h->ip_len);
		CHECK(n > k && memcmp(table + n - k, want, k) == 0);
		snprintf(want, sizeof(want), v6 ? " hlim %u " : " ttl %u id %u ", h->ttl, h->ip_id);
		CHECK(memmem(table, n, want, strlen(want)) != NULL);
		return;
	}
	/* A transport line ends as a TCP line without options does. */
	check_table_tail(table, n, h);
}

/* Every event a packet gives (check_packet_events), each through both printers. */
/* tcpdump's line (-F text): bounded, safe for a terminal, ending with the payload length or,
 * without a transport header, with the reason. */
static void check_text_printer(const uint8_t *pre, struct pkt_event *e)
{
	static char text[BIG_CAP];
	size_t n = check_printer(format_text, e, pre[2], text);

	check_line_max(text, n, TEXT_LINE_MAX);
}

static void check_event_printers(const uint8_t *pre, struct pkt_event *e)
{
	event_mask m = check_packet_events(e);

	/* What enrichment adds. */
	e->proc.hostname = (pre[1] & 7) == 7 ? e->proc.comm : hostnames[pre[1] & 7];
	e->proc.container_id = pre[1] & 8 ? container_id : "";
	for (int id = 0; id < EVENT__COUNT; id++) {
		if (!(m & EVENT_BIT(id)))
			continue;
		e->event = id;
		if (id == EVENT_NET_PACKET_TCP)
			check_printers(pre, e);
		else
			check_proto_printers(pre, e);
		check_text_printer(pre, e);
	}
}

/* A flow end event against its record: the summary as decode_flow_record documents it. */
static void check_flow_summary(const struct pkt_record *r, const struct pkt_flow *k,
			       const struct pkt_flow_event *f)
{
	uint64_t acked = k->bytes_acked, want = acked;

	if (!(r->flags & PKT_FLOW_PASSIVE) && want)
		want--; /* the active side's SYN */
	if ((r->flags & PKT_FLOW_FIN_ACKED) && want)
		want--; /* an acknowledged FIN */
	CHECK(f->bytes_sent == want && f->bytes_sent <= acked);
	CHECK(f->begin_seen == !!(r->flags & PKT_FLOW_BEGIN_SEEN));
	CHECK(f->duration_ns == (f->begin_seen ? k->duration_ns : 0));
	CHECK(f->bytes_received == k->bytes_received && f->retrans_bytes == k->bytes_retrans);
	CHECK(f->segs_sent == k->segs_out && f->segs_received == k->segs_in);
	CHECK(f->data_segs_sent == k->data_segs_out && f->data_segs_received == k->data_segs_in);
	CHECK(f->retrans_segs == k->total_retrans && f->srtt_us == k->srtt_us);
	CHECK(f->min_rtt_us == (k->min_rtt_us == ~0U ? 0 : k->min_rtt_us));
	CHECK(f->delivered_ce == k->delivered_ce);
	CHECK(f->close_reason == k->close_reason && f->closed_first == k->closed_first);
}

/* Both printers on a flow event: bounds, a valid JSON line naming the event and its summary, a
 * safe table line. */
static void check_flow_printers(const uint8_t *pre, struct pkt_event *e)
{
	static char json[BIG_CAP], table[BIG_CAP];
	const struct pkt_flow_event *f = &e->flow;
	char want[96];
	size_t n;

	e->proc.hostname = (pre[1] & 7) == 7 ? e->proc.comm : hostnames[pre[1] & 7];
	e->proc.container_id = pre[1] & 8 ? container_id : "";

	n = check_printer(format_json, e, pre[2], json);
	check_json_line(json, n);
	check_json_field(json, n, "eventName",
			 f->end ? "\"net_flow_tcp_end\"" : "\"net_flow_tcp_begin\"");
	check_json_field(json, n, "value", f->outgoing ? "\"outgoing\"" : "\"incoming\"");
	snprintf(want, sizeof(want), "%u", f->src_port);
	check_json_field(json, n, "value", want);
	/* An arg object opens with {"name":" unescaped, which no string value can hold (its
	 * quotes are escaped): a process or host name cannot fake these. */
	CHECK(!memmem(json, n, "{\"name\":\"summary\"", 17) == !f->end);
	CHECK(!memmem(json, n, "{\"name\":\"proto_tcp\"", 19) &&
	      !memmem(json, n, "{\"name\":\"metadata\"", 18));
	if (f->end) {
		check_json_field(json, n, "begin_seen", f->begin_seen ? "true" : "false");
		/* no begin seen: no duration, said as null rather than a made-up 0 */
		snprintf(want, sizeof(want), "%" PRIu64, f->duration_ns);
		check_json_field(json, n, "duration_ns", f->begin_seen ? want : "null");
		snprintf(want, sizeof(want), "%" PRIu64, f->bytes_sent);
		check_json_field(json, n, "bytes_sent", want);
		snprintf(want, sizeof(want), "%u", f->retrans_segs);
		check_json_field(json, n, "retrans_segs", want);
		snprintf(want, sizeof(want), "\"%s\"", flow_close_reason_name(f->close_reason));
		check_json_field(json, n, "close_reason", want);
		snprintf(want, sizeof(want), "\"%s\"", flow_closer_name(f->closed_first));
		check_json_field(json, n, "closed_first", f->closed_first ? want : "null");
	}

	n = check_printer(format_table, e, pre[2], table);
	check_table_line(table, n);
	CHECK(memmem(table, n, f->end ? " FLOW- " : " FLOW+ ", 7) != NULL);
	if (f->end) {
		snprintf(want, sizeof(want), " retrans %u ", f->retrans_segs);
		CHECK(memmem(table, n, want, strlen(want)) != NULL);
		/* The summary's own field: the last " dur " (the process name, earlier in the
		 * line, may hold the same bytes). */
		const char *dur = NULL, *at = table;

		while ((at = memmem(at, n - (at - table), " dur ", 5))) {
			dur = at;
			at += 5;
		}
		CHECK(dur != NULL);
		CHECK((dur[5] == '?') == !f->begin_seen);
	}
}

/*
 * The input as a flow record, in the shape byte 72 bits 0-1 pick: 0 well-formed (cut after its
 * struct pkt_flow), 1 full-sized, 2 hdr_len from byte 73, 3 the record cut to byte 73 bytes of
 * its fixed part and flow. Only a well-formed record whose fields are in range may decode.
 */
static void check_flow_record(const uint8_t *pre, const uint8_t *pkt, size_t len,
			      const struct pkt_event *ref)
{
	const size_t fixed = offsetof(struct pkt_record, hdr);
	struct pkt_record r;
	struct pkt_flow k;
	struct pkt_event e;
	uint64_t uts_key = 0x5a5a5a5a;
	const uint8_t *local, *remote;
	size_t size = fixed + sizeof(k), alen;
	bool valid;
	uint8_t *rec;
	int err;

	base_record(&r, pre, ref, 0);
	r.kind = PKT_REC_FLOW;
	r.flags = pre[71];
	r.hdr_len = sizeof(k);
	memset(&k, 0, sizeof(k));
	memcpy(&k, pkt, len < sizeof(k) ? len : sizeof(k));
	memcpy(r.hdr, &k, sizeof(k));
	switch (pre[72] & 3) {
	case 1:
		size = sizeof(r);
		break;
	case 2:
		r.hdr_len = pre[73];
		break;
	case 3:
		size = pre[73] % (fixed + sizeof(k));
		break;
	}
	valid = r.hdr_len == sizeof(k) && size >= fixed + sizeof(k) &&
		(k.conn.family == 4 || k.conn.family == 6) && k.close_reason <= PKT_CLOSE_TIMEOUT &&
		k.closed_first <= PKT_CLOSER_REMOTE;
	rec = malloc(size);
	CHECK(rec != NULL);
	memcpy(rec, &r, size);
	memset(&e, 0x5a, sizeof(e));
	err = decode_flow_record(rec, size, 0, &e, &uts_key);
	free(rec);
	CHECK(err == 0 || err == -DECODE_BAD_RECORD);
	CHECK(!err == valid);
	/* A flow record is never a packet, whatever its bytes say. */
	if (size <= sizeof(r)) {
		struct pkt_event pe;
		uint32_t ifindex;
		uint64_t uk;

		CHECK(run_record(&r, size, &pe, 0, &ifindex, &uk) == -DECODE_BAD_RECORD);
	}
	if (err)
		return;
	CHECK(e.event == (r.flags & PKT_FLOW_END ? EVENT_NET_FLOW_TCP_END : EVENT_NET_FLOW_TCP_BEGIN));
	CHECK(e.flow.end == !!(r.flags & PKT_FLOW_END));
	CHECK(e.flow.outgoing == !(r.flags & PKT_FLOW_PASSIVE));
	CHECK(e.flow.family == (k.conn.family == 6 ? AF_INET6 : AF_INET));
	CHECK(e.timestamp_ns == r.ts_ns && uts_key == r.owner.uts_key);
	CHECK(e.proc.pid == r.owner.pid && e.proc.tid == r.owner.tid && e.proc.uid == r.owner.uid);
	CHECK(!memcmp(e.proc.comm, r.owner.comm, PKT_COMM_LEN) && e.proc.comm[PKT_COMM_LEN] == 0);
	/* src is the initiator: the local side only of an outgoing flow */
	alen = k.conn.family == 6 ? 16 : 4;
	local = e.flow.outgoing ? e.flow.src_addr : e.flow.dst_addr;
	remote = e.flow.outgoing ? e.flow.dst_addr : e.flow.src_addr;
	CHECK(!memcmp(local, k.conn.laddr, alen) && !memcmp(remote, k.conn.raddr, alen));
	CHECK((e.flow.outgoing ? e.flow.src_port : e.flow.dst_port) == k.conn.lport);
	CHECK((e.flow.outgoing ? e.flow.dst_port : e.flow.src_port) == k.conn.rport);
	if (e.flow.end)
		check_flow_summary(&r, &k, &e.flow);
	else
		CHECK(!e.flow.begin_seen && e.flow.bytes_sent == 0 && e.flow.retrans_segs == 0 &&
		      e.flow.close_reason == 0);
	check_flow_printers(pre, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pre[FUZZ_PREFIX] = {0};
	struct pkt_event e, raw_e;
	struct chain c;
	size_t len;
	uint8_t *pkt;
	int err;

	memcpy(pre, data, size < FUZZ_PREFIX ? size : FUZZ_PREFIX);
	len = size > FUZZ_PREFIX ? size - FUZZ_PREFIX : 0;
	/* An exactly sized heap copy: a read one byte past len is an ASan report. */
	pkt = malloc(len ? len : 1);
	CHECK(pkt != NULL);
	memcpy(pkt, data + FUZZ_PREFIX * (size > FUZZ_PREFIX), len);

	/* The rest of the event, as decode_record() fills it from a record. */
	memset(&e, 0x5a, sizeof(e)); /* garbage where the decoder must write */
	e.event = EVENT_NET_PACKET_TCP; /* decode_headers() fills a packet event's headers only */
	e.egress = pre[0] == PKT_EGRESS;
	e.packet_len = (uint32_t)le(pre + 3, 4);
	e.timestamp_ns = le(pre + 7, 8);
	e.proc.pid = (uint32_t)le(pre + 15, 4);
	e.proc.tid = (uint32_t)le(pre + 19, 4);
	e.proc.ppid = (uint32_t)le(pre + 23, 4);
	e.proc.uid = (uint32_t)le(pre + 27, 4);
	e.proc.cgroup_id = le(pre + 31, 8);
	memcpy(e.proc.comm, pre + 39, PKT_COMM_LEN);
	e.proc.comm[PKT_COMM_LEN] = 0;
	e.sk_proto = sk_protos[pre[2] & 3];
	memcpy(e.ifname, pre + 55, PKT_IFNAME_LEN);
	e.ifname[PKT_IFNAME_LEN] = 0;

	/* The same bytes as a record's hdr[], its chain fields from the prefix. */
	if (check_raw_record(pre, pkt, len, &e, &raw_e))
		check_event_printers(pre, &raw_e);
	/* The same bytes as a flow record. */
	check_flow_record(pre, pkt, len, &e);

	err = decode_headers(pkt, len, &e.hdr);
	CHECK(err <= 0 && err > -DECODE__MAX && err != -DECODE_BAD_RECORD);
	CHECK(strcmp(decode_strerror(err), "unknown decode error") != 0);
	/* Only a missing or broken IP header costs the event. */
	CHECK(err == 0 || err == -DECODE_TRUNCATED_IP || err == -DECODE_BAD_IP_VERSION ||
	      err == -DECODE_BAD_IHL);
	if (!err) {
		check_headers(pkt, len, &e.hdr, &c);
		check_kernel_record(pre, pkt, len, &c, &e);
		check_event_printers(pre, &e);
	}
	/* -r's decoder: the same, but a TCP header may end inside its options (opts.cut). */
	err = decode_headers_snap(pkt, len, &e.hdr);
	CHECK(err == 0 || err == -DECODE_TRUNCATED_IP || err == -DECODE_BAD_IP_VERSION ||
	      err == -DECODE_BAD_IHL);
	if (!err) {
		CHECK(!e.hdr.opts.cut ||
		      (e.hdr.protocol == IPPROTO_TCP && !e.hdr.l4_error && e.hdr.opts.cut <= 2));
		check_event_printers(pre, &e);
	}
	free(pkt);
	return 0;
}
