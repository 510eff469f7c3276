// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for pktrace's user-space path: decode_headers() on the header bytes of a
 * ring-buffer record, decode_record() on a record holding them (well-formed or not), then
 * format_json() and format_table() on whatever the decoder accepts.
 * Any invariant that does not hold ends in __builtin_trap(), which libFuzzer reports as a crash.
 *
 * Input: a fixed prefix of FUZZ_PREFIX bytes (missing bytes read as zero) that fills the rest of
 * the event as decode_record() does from a record, then the record's hdr[] bytes:
 *
 *   off  len  field
 *     0    1  direction      as pkt_record.direction (PKT_EGRESS is egress, any other ingress)
 *     1    1  select         bits 0-2 host name (7: the comm bytes), bit 3 a container id,
 *                           bits 4-6 the shape of the record given to decode_record()
 *     2    1  cap            picks one more too-small capacity for each printer
 *     3    4  packet_len     little endian, as every multi-byte field here
 *     7    8  timestamp_ns
 *    15    4  pid, then tid, ppid, uid (4 each)
 *    31    8  cgroup_id
 *    39   16  comm           raw bytes, cut at the first NUL as pkt_owner.comm
 *    55   16  ifname         raw bytes, as pkt_record.ifname
 *    71    -  hdr            at most PKT_HDR_MAX bytes (the most a record holds); more are ignored
 *
 * Build and run: make fuzz (see the Makefile); seeds in tests/fuzz/corpus (make_corpus.py).
 */
#define _GNU_SOURCE /* memmem */
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
#include "output.h"
#include "pktrace.h"

#define FUZZ_PREFIX 71
#define CANARY_LEN 32
#define CANARY_BYTE 0xa5
/* Generous room for one line: the JSON line needs under 1 KiB even with every string escaped. */
#define BIG_CAP 8192
/* format_table builds the line in a local buffer of this size (output_table.c). */
#define TABLE_LINE_MAX 384

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

/* A terminal line: UTF-8 with no C0, DEL or C1 control anywhere but the final '\n'. */
static void check_table_line(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t cp;
	size_t i = 0, l;

	CHECK(n >= 2 && n <= TABLE_LINE_MAX && s[n - 1] == '\n');
	while (i + 1 < n) {
		l = check_utf8(u + i, n - 1 - i, &cp);
		CHECK(l != 0);
		CHECK(cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f));
		i += l;
	}
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

/* Checks the decoded headers against the bytes, without walking them as the decoder does. */
static void check_headers(const uint8_t *hdr, size_t len, const struct pkt_headers *h)
{
	static const uint8_t zero[12];
	size_t off;

	CHECK(h->data_offset >= 5 && h->data_offset <= 15);
	CHECK(h->flags <= 0x1ff);
	CHECK(h->family == AF_INET || h->family == AF_INET6);
	CHECK(h->protocol == IPPROTO_TCP);
	CHECK(len >= 1 && (hdr[0] >> 4) == (h->family == AF_INET ? 4 : 6));
	if (h->family == AF_INET6) {
		CHECK(len >= 40 + 20);
		CHECK(memcmp(h->src_addr, hdr + 8, 16) == 0 &&
		      memcmp(h->dst_addr, hdr + 24, 16) == 0);
		return;
	}
	/* IPv4: the TCP header sits right after IHL words, and all of it is within len. */
	off = (size_t)(hdr[0] & 0x0f) * 4;
	CHECK(off >= 20 && off + (size_t)h->data_offset * 4 <= len);
	CHECK(hdr[9] == IPPROTO_TCP && ((hdr[6] << 8 | hdr[7]) & 0x1fff) == 0);
	CHECK(memcmp(h->src_addr, hdr + 12, 4) == 0 && memcmp(h->dst_addr, hdr + 16, 4) == 0);
	CHECK(memcmp(h->src_addr + 4, zero, 12) == 0 && memcmp(h->dst_addr + 4, zero, 12) == 0);
	CHECK(h->src_port == (hdr[off] << 8 | hdr[off + 1]));
	CHECK(h->dst_port == (hdr[off + 2] << 8 | hdr[off + 3]));
	CHECK(h->seq == ((uint32_t)hdr[off + 4] << 24 | (uint32_t)hdr[off + 5] << 16 |
			 (uint32_t)hdr[off + 6] << 8 | hdr[off + 7]));
	CHECK(h->data_offset == hdr[off + 12] >> 4);
	CHECK(h->flags == (hdr[off + 13] | (hdr[off + 12] & 1) << 8));
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

/* Every field of two decoded header sets (not memcmp: struct padding is not a field). */
static bool same_headers(const struct pkt_headers *a, const struct pkt_headers *b)
{
	return a->family == b->family && !memcmp(a->src_addr, b->src_addr, 16) &&
	       !memcmp(a->dst_addr, b->dst_addr, 16) && a->protocol == b->protocol &&
	       a->src_port == b->src_port && a->dst_port == b->dst_port && a->seq == b->seq &&
	       a->ack == b->ack && a->data_offset == b->data_offset && a->flags == b->flags &&
	       a->window == b->window && a->checksum == b->checksum && a->urgent == b->urgent;
}

/*
 * decode_record() on a record built from the same input, in the shape select bits 4-6 pick:
 *   0-3: a well-formed record, cut after hdr_len bytes (bit 4 clear) or full-sized (bit 4 set);
 *   4: hdr_len claims one byte more than the record holds;  5: hdr_len 0xffff;
 *   6: the record is cut inside its fixed part;  7: hdr_len PKT_HDR_MAX + 1 with room for it.
 * A well-formed record must decode as decode_headers() did into exactly the event ref; the
 * others must be refused as DECODE_BAD_RECORD. Every record is an exactly sized heap block.
 */
static void check_record(const uint8_t *pre, const uint8_t *hdr, size_t hdr_len, int want_err,
			 const struct pkt_event *ref)
{
	const size_t fixed = offsetof(struct pkt_record, hdr);
	const uint64_t boot_to_real = 1764145200000000000ull;
	unsigned int shape = pre[1] >> 4 & 7;
	struct pkt_record r;
	struct pkt_event e;
	uint32_t ifindex = 0x5a5a5a5a, uts_inum = 0x5a5a5a5a;
	size_t size = fixed + hdr_len, alloc;
	uint8_t *rec;
	int err;

	memset(&r, 0, sizeof(r));
	r.ts_ns = ref->timestamp_ns - boot_to_real; /* wraps back in decode_record() */
	r.owner.cgroup_id = ref->proc.cgroup_id;
	r.owner.pid = ref->proc.pid;
	r.owner.tid = ref->proc.tid;
	r.owner.ppid = ref->proc.ppid;
	r.owner.uid = ref->proc.uid;
	r.owner.uts_inum = ref->proc.pid ^ ref->proc.uid;
	memcpy(r.owner.comm, pre + 39, PKT_COMM_LEN);
	r.pkt_len = ref->packet_len;
	r.ifindex = ref->proc.tid ^ ref->proc.ppid;
	r.direction = pre[0];
	r.l3_proto = hdr_len ? hdr[0] >> 4 : 0;
	r.hdr_len = (uint16_t)hdr_len;
	memcpy(r.ifname, pre + 55, PKT_IFNAME_LEN);
	memcpy(r.hdr, hdr, hdr_len);
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
	}
	alloc = size < sizeof(r) ? size : sizeof(r);
	rec = malloc(size ? size : 1);
	CHECK(rec != NULL);
	memset(rec, 0, size);
	memcpy(rec, &r, alloc);

	memset(&e, 0x5a, sizeof(e));
	err = decode_record(rec, size, boot_to_real, &e, &ifindex, &uts_inum);
	free(rec);
	if (shape >= 4) {
		CHECK(err == -DECODE_BAD_RECORD);
		return;
	}
	CHECK(err == want_err);
	if (err)
		return;
	CHECK(same_headers(&e.hdr, &ref->hdr));
	CHECK(e.timestamp_ns == ref->timestamp_ns && e.egress == ref->egress &&
	      e.packet_len == ref->packet_len);
	CHECK(e.proc.pid == ref->proc.pid && e.proc.tid == ref->proc.tid &&
	      e.proc.ppid == ref->proc.ppid && e.proc.uid == ref->proc.uid &&
	      e.proc.cgroup_id == ref->proc.cgroup_id);
	CHECK(!memcmp(e.proc.comm, ref->proc.comm, sizeof(e.proc.comm)));
	CHECK(!memcmp(e.ifname, ref->ifname, sizeof(e.ifname)));
	CHECK(ifindex == r.ifindex && uts_inum == r.owner.uts_inum);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char json[BIG_CAP], table[BIG_CAP];
	uint8_t pre[FUZZ_PREFIX] = {0};
	struct pkt_event e;
	size_t hdr_len, n;
	uint8_t *hdr;
	char want[32];
	int err;

	memcpy(pre, data, size < FUZZ_PREFIX ? size : FUZZ_PREFIX);
	hdr_len = size > FUZZ_PREFIX ? size - FUZZ_PREFIX : 0;
	if (hdr_len > PKT_HDR_MAX)
		hdr_len = PKT_HDR_MAX;
	/* An exactly sized heap copy: a read one byte past len is an ASan report. */
	hdr = malloc(hdr_len ? hdr_len : 1);
	CHECK(hdr != NULL);
	memcpy(hdr, data + FUZZ_PREFIX * (size > FUZZ_PREFIX), hdr_len);

	memset(&e, 0x5a, sizeof(e)); /* garbage where the decoder must write */
	err = decode_headers(hdr, hdr_len, &e.hdr);
	CHECK(err <= 0 && err > -DECODE__MAX && err != -DECODE_BAD_RECORD);
	CHECK(strcmp(decode_strerror(err), "unknown decode error") != 0);
	if (!err)
		check_headers(hdr, hdr_len, &e.hdr);

	/* The rest of the event, as decode_record() fills it from a record. */
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
	memcpy(e.ifname, pre + 55, PKT_IFNAME_LEN);
	e.ifname[PKT_IFNAME_LEN] = 0;
	check_record(pre, hdr, hdr_len, err, &e);
	free(hdr);
	if (err)
		return 0;
	/* What enrichment adds. */
	e.proc.hostname = (pre[1] & 7) == 7 ? e.proc.comm : hostnames[pre[1] & 7];
	e.proc.container_id = pre[1] & 8 ? container_id : "";

	n = check_printer(format_json, &e, pre[2], json);
	check_json_line(json, n);
	snprintf(want, sizeof(want), "%u", e.hdr.data_offset);
	check_json_field(json, n, "dataOffset", want);
	check_json_field(json, n, "protocol", "6");
	snprintf(want, sizeof(want), "%u", e.hdr.src_port);
	check_json_field(json, n, "srcPort", want);
	snprintf(want, sizeof(want), "%u", e.hdr.seq);
	check_json_field(json, n, "seq", want);
	check_json_field(json, n, "SYN", e.hdr.flags & TCP_FLAG_SYN ? "true" : "false");
	check_json_field(json, n, "NS", e.hdr.flags & TCP_FLAG_NS ? "true" : "false");
	check_json_field(json, n, "direction", e.egress ? "\"egress\"" : "\"ingress\"");

	n = check_printer(format_table, &e, pre[2], table);
	check_table_line(table, n);
	return 0;
}
