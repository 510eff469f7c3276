// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Unit tests for decode_headers() and decode_strerror() on hand-built packets. */
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "decode.h"
#include "events.h"
#include "pktrace.h"

#define PKT_BUF 8192
#define CHAIN_MAX 1024

/*
 * A packet under construction; next_off is the byte naming the protocol of what comes next. The
 * builders also note what they built (the chain, where TCP starts): the truth the decoder's
 * summary is checked against, and what a kernel record is made from.
 */
struct pkt {
	uint8_t b[PKT_BUF];
	size_t len;
	size_t next_off;
	size_t ext_n;
	size_t ext_len;
	uint8_t ext_types[CHAIN_MAX];
	size_t l4_off;
	size_t l4_len;
};

struct tcp_spec {
	uint16_t sport;
	uint16_t dport;
	uint32_t seq;
	uint32_t ack;
	uint8_t doff;
	uint16_t flags;
	uint16_t window;
	uint16_t checksum;
	uint16_t urgent;
};

static const uint8_t v4_src[4] = { 192, 0, 2, 1 };
static const uint8_t v4_dst[4] = { 198, 51, 100, 254 };
static const uint8_t v6_src[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01 };
static const uint8_t v6_dst[16] = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0,
				    0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x12, 0x34 };

/* High bits set everywhere, so a sign or byte-order slip in the decoder shows. */
static const struct tcp_spec tcp_default = {
	.sport = 50000,
	.dport = 443,
	.seq = 0xd15ea5e5,
	.ack = 0x8badf00d,
	.doff = 5,
	.flags = TCP_FLAG_ACK | TCP_FLAG_PSH,
	.window = 0xfaf0,
	.checksum = 0xbeef,
	.urgent = 0x8001,
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static uint8_t *pkt_grow(struct pkt *p, size_t n)
{
	uint8_t *at = p->b + p->len;

	assert_true(p->len + n <= PKT_BUF);
	memset(at, 0, n);
	p->len += n;
	return at;
}

/* IPv4 header; opt_len bytes of options (a multiple of 4) after the 20 fixed bytes. */
static void pkt_ipv4(struct pkt *p, const uint8_t *opts, size_t opt_len, uint16_t frag)
{
	uint8_t *h;

	assert_int_equal(opt_len % 4, 0);
	memset(p, 0, sizeof(*p));
	h = pkt_grow(p, 20 + opt_len);
	h[0] = 0x40 | (uint8_t)(5 + opt_len / 4);
	put16(h + 4, 0x1234);
	put16(h + 6, frag);
	h[8] = 64;
	memcpy(h + 12, v4_src, 4);
	memcpy(h + 16, v4_dst, 4);
	if (opt_len)
		memcpy(h + 20, opts, opt_len);
	p->next_off = 9;
}

static void pkt_ipv6(struct pkt *p)
{
	uint8_t *h;

	memset(p, 0, sizeof(*p));
	h = pkt_grow(p, 40);
	put32(h, 0x60012345);
	h[7] = 64;
	memcpy(h + 8, v6_src, 16);
	memcpy(h + 24, v6_dst, 16);
	p->next_off = 6;
}

static void chain_note(struct pkt *p, uint8_t type, size_t len)
{
	assert_true(p->ext_n < CHAIN_MAX);
	p->ext_types[p->ext_n++] = type;
	p->ext_len += len;
}

/* Hop-by-hop, routing or destination options: total_len a multiple of 8, padded with PadN. */
static void pkt_ext(struct pkt *p, uint8_t type, size_t total_len)
{
	uint8_t *h;

	assert_true(total_len >= 8 && total_len % 8 == 0 && total_len <= 2048);
	p->b[p->next_off] = type;
	p->next_off = p->len;
	h = pkt_grow(p, total_len);
	h[1] = (uint8_t)(total_len / 8 - 1);
	chain_note(p, type, total_len);
	if (type == IPPROTO_ROUTING) {
		h[2] = 4; /* segment routing header type, segments left 0: passed through */
		return;
	}
	h[2] = 1; /* PadN covering the rest */
	h[3] = (uint8_t)(total_len - 4);
}

/* AH: total_len a multiple of 4, at least 12; its length field counts 4-byte words minus 2. */
static void pkt_ah(struct pkt *p, size_t total_len)
{
	uint8_t *h;

	assert_true(total_len >= 12 && total_len % 4 == 0);
	p->b[p->next_off] = IPPROTO_AH;
	p->next_off = p->len;
	h = pkt_grow(p, total_len);
	chain_note(p, IPPROTO_AH, total_len);
	h[1] = (uint8_t)(total_len / 4 - 2);
	put32(h + 4, 0x00000100);
	put32(h + 8, 7);
	memset(h + 12, 0xa5, total_len - 12);
}

static void pkt_frag(struct pkt *p, uint16_t offset, int more)
{
	uint8_t *h;

	p->b[p->next_off] = IPPROTO_FRAGMENT;
	p->next_off = p->len;
	h = pkt_grow(p, 8);
	chain_note(p, IPPROTO_FRAGMENT, 8);
	put16(h + 2, (uint16_t)(offset << 3 | (more ? 1 : 0)));
	put32(h + 4, 0xcafef00d);
}

/* TCP header with options filling doff; also fixes up the IP length field. */
static void pkt_tcp(struct pkt *p, const struct tcp_spec *t)
{
	static const uint8_t opts[40] = {
		2,    4,    0x05, 0xb4, /* MSS 1460 */
		1,    3,    3,    7,    /* NOP, window scale 7 */
		4,    2,    1,    1,    /* SACK permitted, NOP, NOP */
		8,    10,   0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, /* timestamps */
	};
	size_t hdr_len = (size_t)(t->doff < 5 ? 5 : t->doff) * 4;
	uint8_t *h;

	p->b[p->next_off] = IPPROTO_TCP;
	p->l4_off = p->len;
	p->l4_len = hdr_len;
	h = pkt_grow(p, hdr_len);
	put16(h, t->sport);
	put16(h + 2, t->dport);
	put32(h + 4, t->seq);
	put32(h + 8, t->ack);
	h[12] = (uint8_t)(t->doff << 4 | (t->flags >> 8 & 1));
	h[13] = t->flags & 0xff;
	put16(h + 14, t->window);
	put16(h + 16, t->checksum);
	put16(h + 18, t->urgent);
	memcpy(h + 20, opts, hdr_len - 20);
	if ((p->b[0] >> 4) == 4)
		put16(p->b + 2, (uint16_t)p->len);
	else
		put16(p->b + 4, (uint16_t)(p->len - 40));
}

/* IHL 8: NOP, then record route (type 7, length 11, pointer 4) with room for two addresses. */
static void build_v4_opts(struct pkt *p, const struct tcp_spec *t)
{
	static const uint8_t rr[12] = { 1, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0 };

	pkt_ipv4(p, rr, sizeof(rr), 0);
	pkt_tcp(p, t);
}

/* Hop-by-hop 8, destination options 16, routing 24, first fragment 8: 56 bytes of extensions. */
static void build_v6_ext(struct pkt *p, const struct tcp_spec *t)
{
	pkt_ipv6(p);
	pkt_ext(p, IPPROTO_HOPOPTS, 8);
	pkt_ext(p, IPPROTO_DSTOPTS, 16);
	pkt_ext(p, IPPROTO_ROUTING, 24);
	pkt_frag(p, 0, 1);
	pkt_tcp(p, t);
}

/* Decodes from an exact-size heap copy so that a sanitizer or valgrind catches any over-read. */
static int decode_exact(const uint8_t *b, size_t len, struct pkt_headers *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, b, len);
	rc = decode_headers(len ? copy : NULL, len, out);
	free(copy);
	return rc;
}

static int decode_pkt(const struct pkt *p, struct pkt_headers *out)
{
	/* Poisoned so that a field the decoder forgets to fill is noticed. */
	memset(out, 0xaa, sizeof(*out));
	return decode_exact(p->b, p->len, out);
}

static void assert_tcp_fields(const struct pkt_headers *h, const struct tcp_spec *t)
{
	assert_int_equal(h->l4_error, 0);
	assert_int_equal(h->protocol, IPPROTO_TCP);
	assert_int_equal(h->src_port, t->sport);
	assert_int_equal(h->dst_port, t->dport);
	assert_int_equal(h->seq, t->seq);
	assert_int_equal(h->ack, t->ack);
	assert_int_equal(h->data_offset, t->doff);
	assert_int_equal(h->flags, t->flags);
	assert_int_equal(h->window, t->window);
	assert_int_equal(h->checksum, t->checksum);
	assert_int_equal(h->urgent, t->urgent);
}

/* The fields only TCP has: 0 for any other transport (and without a transport header). */
static void assert_no_tcp_only_fields(const struct pkt_headers *h)
{
	assert_int_equal(h->seq, 0);
	assert_int_equal(h->ack, 0);
	assert_int_equal(h->data_offset, 0);
	assert_int_equal(h->flags, 0);
	assert_int_equal(h->window, 0);
	assert_int_equal(h->urgent, 0);
	assert_false(tcp_opts_shown(&h->opts));
}

static void assert_no_tcp_fields(const struct pkt_headers *h)
{
	assert_int_not_equal(h->l4_error, 0);
	assert_int_equal(h->src_port, 0);
	assert_int_equal(h->dst_port, 0);
	assert_int_equal(h->checksum, 0);
	assert_no_tcp_only_fields(h);
}

/* A packet that is still an event, without TCP fields: returns why. */
static int decode_partial(const struct pkt *p, struct pkt_headers *h)
{
	assert_int_equal(decode_pkt(p, h), DECODE_OK);
	assert_no_tcp_fields(h);
	return h->l4_error;
}

/* The chain summary against what the builders put in the packet. */
static void assert_chain(const struct pkt_headers *h, const struct pkt *p)
{
	size_t listed = p->ext_n < EVENT_EXT_TYPES ? p->ext_n : EVENT_EXT_TYPES;

	assert_int_equal(h->ext_count, p->ext_n < 255 ? p->ext_n : 255);
	assert_int_equal(h->ext_len, p->ext_len);
	assert_int_equal(h->ext_types_n, listed);
	assert_memory_equal(h->ext_types, p->ext_types, listed);
}

static void assert_v4_addrs(const struct pkt_headers *h)
{
	static const uint8_t zero[12];

	assert_int_equal(h->family, AF_INET);
	assert_memory_equal(h->src_addr, v4_src, 4);
	assert_memory_equal(h->dst_addr, v4_dst, 4);
	assert_memory_equal(h->src_addr + 4, zero, 12);
	assert_memory_equal(h->dst_addr + 4, zero, 12);
}

static void assert_v6_addrs(const struct pkt_headers *h)
{
	assert_int_equal(h->family, AF_INET6);
	assert_memory_equal(h->src_addr, v6_src, 16);
	assert_memory_equal(h->dst_addr, v6_dst, 16);
}

static void test_ipv4_plain(void **state)
{
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	pkt_ipv4(&p, NULL, 0, 0x4000); /* DF set: not a fragment */
	pkt_tcp(&p, &tcp_default);
	assert_int_equal(p.len, 40);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_v4_addrs(&h);
	assert_tcp_fields(&h, &tcp_default);
}

static void test_ipv4_options(void **state)
{
	struct tcp_spec t = tcp_default;
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	t.doff = 8;
	t.flags = TCP_FLAG_SYN;
	t.sport = 0xffff;
	t.dport = 0x8000;
	build_v4_opts(&p, &t);
	assert_int_equal(p.b[0], 0x48);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_v4_addrs(&h);
	assert_tcp_fields(&h, &t);
}

static void test_ipv4_max_options(void **state)
{
	uint8_t nops[40];
	struct tcp_spec t = tcp_default;
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	memset(nops, 1, sizeof(nops));
	t.doff = 15;
	pkt_ipv4(&p, nops, sizeof(nops), 0);
	pkt_tcp(&p, &t);
	assert_int_equal(p.len, 120);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_v4_addrs(&h);
	assert_tcp_fields(&h, &t);
}

static void test_ipv4_payload_after_tcp(void **state)
{
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	pkt_ipv4(&p, NULL, 0, 0);
	pkt_tcp(&p, &tcp_default);
	memset(pkt_grow(&p, 100), 0x5a, 100);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_tcp_fields(&h, &tcp_default);
}

static void test_ipv6_plain(void **state)
{
	struct tcp_spec t = tcp_default;
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	t.seq = 0xffffffff;
	t.ack = 0x80000000;
	t.flags = TCP_FLAG_FIN | TCP_FLAG_ACK;
	pkt_ipv6(&p);
	pkt_tcp(&p, &t);
	assert_int_equal(p.len, 60);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_v6_addrs(&h);
	assert_tcp_fields(&h, &t);
}

static void test_ipv6_ext_headers(void **state)
{
	struct tcp_spec t = tcp_default;
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	t.doff = 10;
	build_v6_ext(&p, &t);
	assert_int_equal(p.len, 40 + 56 + 40);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_v6_addrs(&h);
	assert_tcp_fields(&h, &t);
}

static void test_ipv6_ah(void **state)
{
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	/* 24 bytes: length field 4, which the 8-byte rule would misread as 40. */
	pkt_ipv6(&p);
	pkt_ah(&p, 24);
	pkt_ext(&p, IPPROTO_DSTOPTS, 8);
	pkt_tcp(&p, &tcp_default);
	assert_int_equal(p.b[40 + 1], 4);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_v6_addrs(&h);
	assert_tcp_fields(&h, &tcp_default);

	/* 12 bytes: the shortest AH, an ICV of zero length. */
	pkt_ipv6(&p);
	pkt_ah(&p, 12);
	pkt_tcp(&p, &tcp_default);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_tcp_fields(&h, &tcp_default);
}

static void test_ipv6_six_ext_headers(void **state)
{
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	pkt_ipv6(&p);
	pkt_ext(&p, IPPROTO_HOPOPTS, 8);
	pkt_ext(&p, IPPROTO_DSTOPTS, 8);
	pkt_ext(&p, IPPROTO_ROUTING, 16);
	pkt_frag(&p, 0, 0);
	pkt_ah(&p, 16);
	pkt_ext(&p, IPPROTO_DSTOPTS, 8);
	pkt_tcp(&p, &tcp_default);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_tcp_fields(&h, &tcp_default);
}

/* The chain is walked to its end, whatever its length: 300 headers of 8 bytes here. */
static void test_ipv6_ext_chain_unbounded(void **state)
{
	struct pkt p;
	struct pkt_headers h;
	int i;

	(void)state;

	pkt_ipv6(&p);
	for (i = 0; i < 300; i++)
		pkt_ext(&p, IPPROTO_DSTOPTS, 8);
	pkt_tcp(&p, &tcp_default);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_tcp_fields(&h, &tcp_default);
	/* The count saturates at 255 ("or more"), the list stops at 64, the length is exact. */
	assert_int_equal(h.ext_count, 255);
	assert_int_equal(h.ext_types_n, EVENT_EXT_TYPES);
	assert_int_equal(h.ext_len, 2400);
	assert_chain(&h, &p);
}

static void test_flags_each_alone(void **state)
{
	(void)state;

	static const uint16_t flags[] = {
		TCP_FLAG_FIN, TCP_FLAG_SYN, TCP_FLAG_RST, TCP_FLAG_PSH, TCP_FLAG_ACK,
		TCP_FLAG_URG, TCP_FLAG_ECE, TCP_FLAG_CWR, TCP_FLAG_NS,
	};
	static const uint8_t wire13[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x00 };
	struct tcp_spec t = tcp_default;
	struct pkt p;
	struct pkt_headers h;
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		t.flags = flags[i];
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_tcp(&p, &t);
		/* The builder must put each flag where the RFCs do, or this proves nothing. */
		assert_int_equal(p.b[20 + 13], wire13[i]);
		assert_int_equal(p.b[20 + 12] & 1, flags[i] == TCP_FLAG_NS);
		assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
		assert_int_equal(h.flags, flags[i]);
		assert_int_equal(h.data_offset, 5);
	}
}

static void test_flags_all_and_reserved(void **state)
{
	struct tcp_spec t = tcp_default;
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	t.flags = 0x1ff;
	pkt_ipv6(&p);
	pkt_tcp(&p, &t);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_int_equal(h.flags, 0x1ff);

	/* The three reserved bits beside NS are not flags and must not shift data_offset. */
	t.flags = 0;
	pkt_ipv6(&p);
	pkt_tcp(&p, &t);
	p.b[40 + 12] |= 0x0e;
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.data_offset, 5);
}

/*
 * Every cut of p: before ip_end (the IPv4 header, or the IPv6 fixed header) no event; then an
 * event without TCP fields: a truncated chain before l4_off, a truncated TCP header after.
 */
static void assert_every_cut_fails(const struct pkt *p, size_t ip_end, size_t l4_off)
{
	struct pkt_headers h;
	size_t len;
	int want, rc;

	for (len = 0; len < p->len; len++) {
		memset(&h, 0x5a, sizeof(h));
		rc = decode_exact(p->b, len, &h);
		if (len < ip_end) {
			if (rc != -DECODE_TRUNCATED_IP)
				fail_msg("cut at %zu of %zu: got %s, want no event", len, p->len,
					 decode_strerror(rc));
			continue;
		}
		want = len < l4_off ? DECODE_TRUNCATED_IP : DECODE_TRUNCATED_TCP;
		if (rc != 0 || h.l4_error != want)
			fail_msg("cut at %zu of %zu: got %d/%s, want an event with %s", len, p->len,
				 rc, decode_strerror(rc ? rc : h.l4_error), decode_strerror(want));
		assert_no_tcp_fields(&h);
		/* The headers before the cut are in the summary, the cut one is not. */
		assert_true(h.ext_len <= len - ip_end);
	}
	assert_int_equal(decode_exact(p->b, p->len, &h), DECODE_OK);
	assert_int_equal(h.l4_error, 0);
}

static void test_truncated_ipv4(void **state)
{
	struct tcp_spec t = tcp_default;
	struct pkt p;

	(void)state;

	t.doff = 10;
	build_v4_opts(&p, &t);
	assert_int_equal(p.len, 32 + 40);
	assert_every_cut_fails(&p, 32, 32);
}

static void test_truncated_ipv6(void **state)
{
	struct tcp_spec t = tcp_default;
	struct pkt p;

	(void)state;

	t.doff = 10;
	build_v6_ext(&p, &t);
	assert_every_cut_fails(&p, 40, 40 + 56);

	pkt_ipv6(&p);
	pkt_ah(&p, 24);
	pkt_tcp(&p, &t);
	assert_every_cut_fails(&p, 40, 40 + 24);

	/* 160 bytes of hop-by-hop and 40 of TCP options: cut anywhere, never a wrong event. */
	t.doff = 15;
	pkt_ipv6(&p);
	pkt_ext(&p, IPPROTO_HOPOPTS, 160);
	pkt_tcp(&p, &t);
	assert_every_cut_fails(&p, 40, 40 + 160);
}

static void test_null_empty(void **state)
{
	struct pkt_headers h;

	(void)state;

	assert_int_equal(decode_headers(NULL, 0, &h), -DECODE_TRUNCATED_IP);
}

static void test_bad_data_offset(void **state)
{
	struct tcp_spec t = tcp_default;
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	/* The 20 bytes are there: the ports and the data offset, nothing else of TCP's. */
	for (t.doff = 0; t.doff < 5; t.doff++) {
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_tcp(&p, &t);
		assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
		assert_int_equal(h.l4_error, DECODE_BAD_DATA_OFFSET);
		assert_int_equal(h.src_port, t.sport);
		assert_int_equal(h.dst_port, t.dport);
		assert_int_equal(h.data_offset, t.doff);
		assert_true(pkt_ports_read(&h));
		h.data_offset = 0;
		assert_no_tcp_only_fields(&h);
		assert_int_equal(h.checksum, 0);
		assert_v4_addrs(&h);

		build_v6_ext(&p, &t);
		assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
		assert_int_equal(h.l4_error, DECODE_BAD_DATA_OFFSET);
		assert_int_equal(h.src_port, t.sport);
		assert_int_equal(h.dst_port, t.dport);
		assert_true(pkt_ports_read(&h));
		assert_v6_addrs(&h);
		assert_chain(&h, &p);
	}
}

static void test_data_offset_beyond_buffer(void **state)
{
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	/* Claims 60 bytes of TCP header but only the fixed 20 are there. */
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_tcp(&p, &tcp_default);
	p.b[20 + 12] = 0xf0;
	assert_int_equal(decode_partial(&p, &h), DECODE_TRUNCATED_TCP);
}

static void test_bad_version(void **state)
{
	struct pkt p;
	struct pkt_headers h;
	unsigned int v;

	(void)state;

	for (v = 0; v < 16; v++) {
		if (v == 4 || v == 6)
			continue;
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_tcp(&p, &tcp_default);
		p.b[0] = (uint8_t)(v << 4 | 5);
		assert_int_equal(decode_pkt(&p, &h), -DECODE_BAD_IP_VERSION);
	}
	/* One byte is enough to know the version is wrong. */
	p.b[0] = 0x50;
	assert_int_equal(decode_exact(p.b, 1, &h), -DECODE_BAD_IP_VERSION);
}

static void test_bad_ihl(void **state)
{
	struct pkt p;
	struct pkt_headers h;
	uint8_t ihl;

	(void)state;

	for (ihl = 0; ihl < 5; ihl++) {
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_tcp(&p, &tcp_default);
		p.b[0] = 0x40 | ihl;
		assert_int_equal(decode_pkt(&p, &h), -DECODE_BAD_IHL);
	}
}

/* Other transports are decoded, not errors; a protocol pktrace does not read has no fields. */
static void test_not_tcp(void **state)
{
	static const uint8_t v4_protos[] = { IPPROTO_GRE, 0, IPPROTO_SCTP };
	static const uint8_t v6_protos[] = { IPPROTO_ESP, IPPROTO_NONE, IPPROTO_SCTP };
	struct pkt p;
	struct pkt_headers h;
	size_t i;

	(void)state;

	for (i = 0; i < sizeof(v4_protos); i++) {
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_tcp(&p, &tcp_default);
		p.b[9] = v4_protos[i];
		assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
		assert_int_equal(h.l4_error, 0);
		assert_int_equal(h.protocol, v4_protos[i]);
		assert_int_equal(h.next_header, v4_protos[i]);
		assert_int_equal(h.src_port, 0);
		assert_int_equal(h.seq, 0);
		assert_v4_addrs(&h);
	}
	for (i = 0; i < sizeof(v6_protos); i++) {
		pkt_ipv6(&p);
		pkt_tcp(&p, &tcp_default);
		p.b[6] = v6_protos[i];
		assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
		assert_int_equal(h.l4_error, 0);
		assert_int_equal(h.protocol, v6_protos[i]);
		assert_int_equal(h.ext_count, 0);
		assert_int_equal(h.src_port, 0);
		assert_v6_addrs(&h);

		/* The same after an extension header, whose next-header byte names it. */
		pkt_ipv6(&p);
		pkt_ext(&p, IPPROTO_HOPOPTS, 8);
		pkt_tcp(&p, &tcp_default);
		p.b[p.next_off] = v6_protos[i];
		assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
		assert_int_equal(h.l4_error, 0);
		assert_int_equal(h.protocol, v6_protos[i]);
		assert_int_equal(h.next_header, IPPROTO_HOPOPTS);
		assert_chain(&h, &p);
	}
	/* A TCP header relabelled UDP or ICMP is read as one: no TCP fields, no error. */
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_tcp(&p, &tcp_default);
	p.b[9] = IPPROTO_UDP;
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_int_equal(h.l4_error, 0);
	assert_int_equal(h.protocol, IPPROTO_UDP);
	assert_int_equal(h.src_port, tcp_default.sport);
	assert_int_equal(h.dst_port, tcp_default.dport);
	assert_int_equal(h.udp_len, tcp_default.seq >> 16);
	assert_int_equal(h.checksum, tcp_default.seq & 0xffff);
	p.b[9] = IPPROTO_ICMP;
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_int_equal(h.l4_error, 0);
	assert_int_equal(h.icmp_type, tcp_default.sport >> 8);
	assert_int_equal(h.icmp_code, tcp_default.sport & 0xff);
}

static void test_ipv4_fragments(void **state)
{
	static const uint16_t later[] = { 0x0001, 0x2001, 0x1fff, 0x00b9, 0x8010 };
	static const uint16_t first[] = { 0x0000, 0x2000, 0x4000 };
	struct pkt p;
	struct pkt_headers h;
	size_t i;

	(void)state;

	for (i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		pkt_ipv4(&p, NULL, 0, later[i]);
		pkt_tcp(&p, &tcp_default);
		assert_int_equal(decode_partial(&p, &h), DECODE_FRAGMENT);
		assert_int_equal(h.protocol, IPPROTO_TCP);
		assert_v4_addrs(&h);
	}
	for (i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		pkt_ipv4(&p, NULL, 0, first[i]);
		pkt_tcp(&p, &tcp_default);
		assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
		assert_tcp_fields(&h, &tcp_default);
	}
}

static void test_ipv6_fragments(void **state)
{
	struct pkt p;
	struct pkt_headers h;

	(void)state;

	pkt_ipv6(&p);
	pkt_frag(&p, 1, 1);
	pkt_tcp(&p, &tcp_default);
	assert_int_equal(decode_partial(&p, &h), DECODE_FRAGMENT);
	assert_int_equal(h.protocol, IPPROTO_TCP);
	assert_chain(&h, &p);

	/* The last fragment (M clear) at the highest offset, after a hop-by-hop header. */
	pkt_ipv6(&p);
	pkt_ext(&p, IPPROTO_HOPOPTS, 8);
	pkt_frag(&p, 0x1fff, 0);
	pkt_tcp(&p, &tcp_default);
	assert_int_equal(decode_partial(&p, &h), DECODE_FRAGMENT);
	assert_chain(&h, &p);

	/* An atomic fragment (offset 0, M clear, RFC 6946) holds the whole segment. */
	pkt_ipv6(&p);
	pkt_frag(&p, 0, 0);
	pkt_tcp(&p, &tcp_default);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_tcp_fields(&h, &tcp_default);
}

static void test_strerror(void **state)
{
	static const int unknown[] = { DECODE__MAX, -DECODE__MAX, 1000, -1000, INT_MAX, INT_MIN };
	const char *names[DECODE__MAX];
	int e, f;
	size_t i;

	(void)state;

	for (e = 0; e < DECODE__MAX; e++) {
		names[e] = decode_strerror(-e);
		assert_non_null(names[e]);
		assert_true(strlen(names[e]) > 0);
		assert_string_equal(decode_strerror(e), names[e]);
		for (f = 0; f < e; f++)
			assert_string_not_equal(names[e], names[f]);
	}
	assert_string_equal(decode_strerror(-DECODE_TRUNCATED_TCP), "truncated TCP header");
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		const char *s = decode_strerror(unknown[i]);

		assert_non_null(s);
		assert_true(strlen(s) > 0);
		for (e = 0; e < DECODE__MAX; e++)
			assert_string_not_equal(s, names[e]);
	}
}

/* A record as the kernel side writes it: every field lands in the event, nothing past size. */
static void fill_record(struct pkt_record *r, const struct pkt *p)
{
	memset(r, 0xa5, sizeof(*r));
	r->ts_ns = 1000;
	r->owner.pid = 4242;
	r->owner.tid = 4243;
	r->owner.ppid = 4100;
	r->owner.uid = 1000;
	r->owner.cgroup_id = 0x123456789ULL;
	r->owner.uts_key = 0x1234567890abcdefULL;
	memcpy(r->owner.comm, "sixteen-chars-xx", PKT_COMM_LEN); /* no NUL: the kernel's maximum */
	r->pkt_len = 70000;
	r->ifindex = 7;
	r->direction = PKT_EGRESS;
	r->l3_proto = 4;
	r->kind = PKT_REC_PACKET;
	r->flags = 0;
	r->ext_count = 0;
	r->ext_len = 0;
	memcpy(r->ifname, "veth-a\0\0garbage", PKT_IFNAME_LEN);
	memcpy(r->hdr, p->b, p->len < PKT_HDR_MAX ? p->len : PKT_HDR_MAX);
	r->hdr_len = (uint16_t)(p->len < PKT_HDR_MAX ? p->len : PKT_HDR_MAX);
	r->snap_len = 0;
}

static void test_record_fields(void **state)
{
	struct pkt_record r;
	struct pkt_event e;
	struct pkt p = { 0 };
	uint32_t ifindex = 0;
	uint64_t uts = 0;

	(void)state;
	build_v4_opts(&p, &tcp_default);
	fill_record(&r, &p);
	memset(&e, 0x5a, sizeof(e));
	assert_int_equal(decode_record(&r, offsetof(struct pkt_record, hdr) + PKT_HDR_SMALL,
				       1764145200000000000ULL, &e, &ifindex, &uts), 0);
	assert_true(e.timestamp_ns == 1764145200000001000ULL);
	assert_true(e.egress);
	assert_int_equal(e.packet_len, 70000);
	assert_string_equal(e.ifname, "veth-a");
	assert_int_equal(e.proc.pid, 4242);
	assert_int_equal(e.proc.tid, 4243);
	assert_int_equal(e.proc.ppid, 4100);
	assert_int_equal(e.proc.uid, 1000);
	assert_true(e.proc.cgroup_id == 0x123456789ULL);
	assert_string_equal(e.proc.comm, "sixteen-chars-xx");
	assert_int_equal(ifindex, 7);
	assert_true(uts == 0x1234567890abcdefULL);
	assert_tcp_fields(&e.hdr, &tcp_default);
	assert_v4_addrs(&e.hdr);
	r.direction = PKT_INGRESS;
	assert_int_equal(decode_record(&r, sizeof(r), 0, &e, &ifindex, &uts), 0);
	assert_false(e.egress);
}

/* A record shorter than its header, or claiming more header bytes than it holds, is refused. */
static void test_record_bad_sizes(void **state)
{
	struct pkt_record r;
	struct pkt_event e;
	struct pkt p = { 0 };
	uint32_t ifindex;
	uint64_t uts;
	size_t base = offsetof(struct pkt_record, hdr), n;

	(void)state;
	build_v4_opts(&p, &tcp_default);
	fill_record(&r, &p);
	for (n = 0; n < base + p.len; n++)
		assert_int_equal(decode_record(&r, n, 0, &e, &ifindex, &uts), -DECODE_BAD_RECORD);
	assert_int_equal(decode_record(&r, base + p.len, 0, &e, &ifindex, &uts), 0);
	r.hdr_len = PKT_HDR_MAX + 1;
	assert_int_equal(decode_record(&r, sizeof(r) + 64, 0, &e, &ifindex, &uts),
			 -DECODE_BAD_RECORD);
	assert_int_equal(decode_record(NULL, 0, 0, &e, &ifindex, &uts), -DECODE_BAD_RECORD);
	/* A claim record is no packet: the reader hands it to the hold, never to the decoder. */
	fill_record(&r, &p);
	r.kind = PKT_REC_CLAIM;
	assert_int_equal(decode_record(&r, sizeof(r), 0, &e, &ifindex, &uts), -DECODE_BAD_RECORD);
	/* A well-sized record with broken headers is a header error, not a record error. */
	fill_record(&r, &p);
	r.hdr[0] = 0x75;
	assert_int_equal(decode_record(&r, sizeof(r), 0, &e, &ifindex, &uts),
			 -DECODE_BAD_IP_VERSION);
}

/* --snaplen: a record with payload after hdr[] decodes as the same record without it; snap_len
 * is checked against the size, and a size that ends inside snap_len is refused. */
static void test_record_snap(void **state)
{
	static struct pkt_record r;
	struct pkt_event e, plain;
	struct pkt p = { 0 };
	uint32_t ifindex;
	uint64_t uts;
	const size_t at = offsetof(struct pkt_record, snap);
	const size_t full = offsetof(struct pkt_record, hdr) + PKT_HDR_MAX;
	size_t n;

	(void)state;
	build_v4_opts(&p, &tcp_default);
	fill_record(&r, &p);
	assert_int_equal(decode_record(&r, full, 0, &plain, &ifindex, &uts), 0);
	memset(r.snap, 'G', 200);
	r.snap_len = 200;
	assert_int_equal(decode_record_snap_len(&r, at + 200), 200);
	assert_int_equal(decode_record(&r, at + 200, 0, &e, &ifindex, &uts), 0);
	assert_memory_equal(&e.hdr, &plain.hdr, sizeof(e.hdr));
	assert_int_equal(e.packet_len, plain.packet_len);
	assert_int_equal(decode_record(&r, sizeof(r), 0, &e, &ifindex, &uts), 0);
	/* More payload than the record holds. */
	assert_int_equal(decode_record_snap_len(&r, at + 199), -DECODE_BAD_RECORD);
	assert_int_equal(decode_record(&r, at + 199, 0, &e, &ifindex, &uts), -DECODE_BAD_RECORD);
	r.snap_len = PKT_SNAP_MAX + 1;
	assert_int_equal(decode_record(&r, sizeof(r), 0, &e, &ifindex, &uts), -DECODE_BAD_RECORD);
	/* Past hdr[] but short of snap[]: no size the kernel side reserves. */
	r.snap_len = 0;
	for (n = full + 1; n < at; n++)
		assert_int_equal(decode_record(&r, n, 0, &e, &ifindex, &uts), -DECODE_BAD_RECORD);
	assert_int_equal(decode_record(&r, at, 0, &e, &ifindex, &uts), 0);
	assert_int_equal(decode_record(&r, sizeof(r) + 1, 0, &e, &ifindex, &uts),
			 -DECODE_BAD_RECORD);
	/* The two smaller sizes never read snap_len, whatever lies there. */
	r.snap_len = 0xa5a5;
	assert_int_equal(decode_record_snap_len(&r, full), 0);
	assert_int_equal(decode_record(&r, full, 0, &e, &ifindex, &uts), 0);
	assert_int_equal(decode_record(&r, offsetof(struct pkt_record, hdr) + PKT_HDR_SMALL, 0, &e,
				       &ifindex, &uts), 0);
}

/*
 * The record the kernel side writes for p (pktrace.h): IPv4 as on the wire; IPv6 the fixed
 * header, the TCP header, then the first PKT_EXT_TYPES chain types, the chain itself left out.
 * no_tcp: the IP header (and the types) only. Returns the record's size.
 */
static size_t kernel_record(struct pkt_record *r, const struct pkt *p, bool no_tcp)
{
	size_t listed = p->ext_n < PKT_EXT_TYPES ? p->ext_n : PKT_EXT_TYPES, n;

	fill_record(r, p);
	if ((p->b[0] >> 4) == 4) {
		n = no_tcp ? (size_t)(p->b[0] & 0x0f) * 4 : p->l4_off + p->l4_len;
		memcpy(r->hdr, p->b, n);
	} else {
		r->l3_proto = 6;
		memcpy(r->hdr, p->b, 40);
		n = 40;
		if (!no_tcp) {
			memcpy(r->hdr + n, p->b + p->l4_off, p->l4_len);
			n += p->l4_len;
		}
		assert_true(n + listed <= PKT_HDR_MAX);
		memcpy(r->hdr + n, p->ext_types, listed);
		n += listed;
		r->ext_count = (uint8_t)(p->ext_n < 255 ? p->ext_n : 255);
		assert_true(p->ext_len <= 0xffff);
		r->ext_len = (uint16_t)p->ext_len;
	}
	r->flags = no_tcp ? PKT_F_NO_L4 : 0;
	r->sk_proto = IPPROTO_TCP;
	r->l4_proto = p->l4_len ? p->b[p->next_off] : IPPROTO_RAW;
	r->hdr_len = (uint16_t)n;
	return offsetof(struct pkt_record, hdr) + n;
}

/* decode_record() on an exactly sized heap copy of the first size bytes of r. */
static int decode_rec(const struct pkt_record *r, size_t size, struct pkt_event *e)
{
	uint8_t *copy = malloc(size ? size : 1);
	uint32_t ifindex;
	uint64_t uts;
	int rc;

	assert_non_null(copy);
	memcpy(copy, r, size);
	memset(e, 0x5a, sizeof(*e));
	rc = decode_record(copy, size, 0, e, &ifindex, &uts);
	free(copy);
	return rc;
}

/* p decodes whole, from the raw packet and from its kernel record, to the same TCP event. */
static void assert_both_paths(const struct pkt *p, const struct tcp_spec *t)
{
	struct pkt_record r;
	struct pkt_headers h;
	struct pkt_event e;
	size_t size;

	assert_int_equal(decode_pkt(p, &h), DECODE_OK);
	assert_tcp_fields(&h, t);
	assert_chain(&h, p);
	size = kernel_record(&r, p, false);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_tcp_fields(&e.hdr, t);
	assert_chain(&e.hdr, p);
	if ((p->b[0] >> 4) == 6)
		assert_v6_addrs(&e.hdr);
	else
		assert_v4_addrs(&e.hdr);
}

/* Chains of n headers: every kind of extension header the kernel steps over, in turn. */
static void build_chain(struct pkt *p, size_t n, const struct tcp_spec *t)
{
	size_t i;

	pkt_ipv6(p);
	for (i = 0; i < n; i++) {
		switch (i % 5) {
		case 0:
			pkt_ext(p, IPPROTO_HOPOPTS, 8);
			break;
		case 1:
			pkt_ext(p, IPPROTO_DSTOPTS, 16);
			break;
		case 2:
			pkt_ext(p, IPPROTO_ROUTING, 24);
			break;
		case 3:
			pkt_frag(p, 0, 1);
			break;
		default:
			pkt_ah(p, 16);
		}
	}
	pkt_tcp(p, t);
}

/* The evasions: 0, 1, 9, 20 and 40 headers; each must be an event with its chain. */
static void test_chain_lengths(void **state)
{
	static const size_t lengths[] = { 0, 1, 9, 20, 40 };
	struct tcp_spec t = tcp_default;
	struct pkt p;
	size_t i;

	(void)state;
	t.doff = 8;
	for (i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		build_chain(&p, lengths[i], &t);
		assert_int_equal(p.ext_n, lengths[i]);
		assert_both_paths(&p, &t);
	}
	/* Nine destination-options headers, the review's first case. */
	pkt_ipv6(&p);
	for (i = 0; i < 9; i++)
		pkt_ext(&p, IPPROTO_DSTOPTS, 8);
	pkt_tcp(&p, &t);
	assert_both_paths(&p, &t);
}

static void test_big_dstopts(void **state)
{
	struct pkt_headers h;
	struct pkt p;

	(void)state;
	/* One 2 KiB destination-options header: its length byte at the maximum, 255. */
	pkt_ipv6(&p);
	pkt_ext(&p, IPPROTO_DSTOPTS, 2048);
	pkt_tcp(&p, &tcp_default);
	assert_int_equal(p.b[41], 255);
	assert_both_paths(&p, &tcp_default);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_int_equal(h.ext_len, 2048);
	assert_int_equal(h.ext_count, 1);
}

static void test_hbh160_tcp_options40(void **state)
{
	struct tcp_spec t = tcp_default;
	struct pkt_record r;
	struct pkt p;

	(void)state;
	/* 160 bytes of hop-by-hop, then TCP with 40 bytes of options: once a decode error. */
	t.doff = 15;
	pkt_ipv6(&p);
	pkt_ext(&p, IPPROTO_HOPOPTS, 160);
	pkt_tcp(&p, &t);
	assert_int_equal(p.len, 40 + 160 + 60);
	assert_both_paths(&p, &t);
	assert_int_equal(kernel_record(&r, &p, false), offsetof(struct pkt_record, hdr) + 101);
}

/* More headers than the record lists: the count goes on (to 255), the list stops at 64. */
static void test_types_list_saturates(void **state)
{
	static const size_t lengths[] = { 63, 64, 65, 100, 254, 255, 256, 400 };
	struct pkt_record r;
	struct pkt_event e;
	struct pkt p;
	size_t i, size;

	(void)state;
	for (i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		build_chain(&p, lengths[i], &tcp_default);
		assert_both_paths(&p, &tcp_default);
	}
	/* A record that says 255 (or more): the event says 255, with the 64 types it has. */
	build_chain(&p, 300, &tcp_default);
	size = kernel_record(&r, &p, false);
	assert_int_equal(r.ext_count, 255);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.hdr.ext_count, 255);
	assert_int_equal(e.hdr.ext_types_n, PKT_EXT_TYPES);
	assert_memory_equal(e.hdr.ext_types, p.ext_types, PKT_EXT_TYPES);
	assert_int_equal(e.hdr.ext_len, p.ext_len);
}

/* PKT_F_NO_L4 records are events: addresses, chain, no TCP fields, and the reason. */
static void test_record_no_tcp(void **state)
{
	struct pkt_record r;
	struct pkt_event e;
	struct pkt p;
	size_t size;

	(void)state;
	/* IPv4: the kernel could not reach TCP; a later fragment says so itself. */
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_tcp(&p, &tcp_default);
	size = kernel_record(&r, &p, true);
	assert_int_equal(r.hdr_len, 20);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_no_tcp_fields(&e.hdr);
	assert_int_equal(e.hdr.l4_error, DECODE_NO_L4);
	assert_string_equal(decode_strerror(e.hdr.l4_error), "no transport header");
	assert_v4_addrs(&e.hdr);
	assert_int_equal(e.packet_len, 70000);
	assert_int_equal(e.proc.pid, 4242);

	pkt_ipv4(&p, NULL, 0, 0x00b9);
	pkt_tcp(&p, &tcp_default);
	size = kernel_record(&r, &p, true);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.hdr.l4_error, DECODE_FRAGMENT);
	assert_no_tcp_fields(&e.hdr);

	/* IPv6 behind a chain (ESP at its end, say): the types and lengths, no TCP. */
	build_chain(&p, 9, &tcp_default);
	size = kernel_record(&r, &p, true);
	assert_int_equal(r.hdr_len, 40 + 9);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.hdr.l4_error, DECODE_NO_L4);
	assert_no_tcp_fields(&e.hdr);
	assert_v6_addrs(&e.hdr);
	assert_chain(&e.hdr, &p);
	assert_int_equal(e.hdr.protocol, IPPROTO_RAW);

	/* Where the chain ended short of TCP the kernel side may not know its length: still an event. */
	r.ext_len = 0;
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.hdr.l4_error, DECODE_NO_L4);
	assert_int_equal(e.hdr.ext_count, 9);
	assert_int_equal(e.hdr.ext_len, 0);
	assert_int_equal(e.hdr.ext_types_n, 9);

	/* 300 headers: count 255, 64 types. */
	build_chain(&p, 300, &tcp_default);
	size = kernel_record(&r, &p, true);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.hdr.l4_error, DECODE_NO_L4);
	assert_chain(&e.hdr, &p);

	/* No chain, and the fixed header names UDP: with the flag, a UDP event without fields. */
	pkt_ipv6(&p);
	pkt_tcp(&p, &tcp_default);
	p.b[6] = IPPROTO_UDP;
	size = kernel_record(&r, &p, true);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.hdr.l4_error, DECODE_NO_L4);
	assert_int_equal(e.hdr.protocol, IPPROTO_UDP);
	/* Without the flag the header after it is read as UDP: an event with UDP fields. */
	size = kernel_record(&r, &p, false);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.hdr.l4_error, 0);
	assert_int_equal(e.hdr.protocol, IPPROTO_UDP);
	assert_int_equal(e.hdr.src_port, tcp_default.sport);
	assert_int_equal(e.hdr.dst_port, tcp_default.dport);
}

/* Expected outcome of a record cut to hdr_len k (see decode_record_ipv6). */
static void check_record_cuts(const struct pkt *p, bool no_tcp)
{
	const size_t base = offsetof(struct pkt_record, hdr);
	bool v6 = (p->b[0] >> 4) == 6;
	size_t ip_end = v6 ? 40 : (size_t)(p->b[0] & 0x0f) * 4;
	size_t tcp_end = no_tcp ? ip_end : ip_end + p->l4_len;
	struct pkt_record r;
	struct pkt_event e;
	size_t full = kernel_record(&r, p, no_tcp) - base, k;
	int rc;

	for (k = 0; k < full; k++) {
		kernel_record(&r, p, no_tcp);
		r.hdr_len = (uint16_t)k;
		rc = decode_rec(&r, base + k, &e);
		if (k < ip_end) {
			if (rc != -DECODE_TRUNCATED_IP)
				fail_msg("hdr_len %zu of %zu: got %d, want no event", k, full, rc);
		} else if (k < tcp_end) {
			/* The TCP header is cut: an event without it (and without the types). */
			if (rc != 0 || e.hdr.l4_error != DECODE_TRUNCATED_TCP)
				fail_msg("hdr_len %zu of %zu: got %d/%d, want a partial event", k,
					 full, rc, e.hdr.l4_error);
			assert_no_tcp_fields(&e.hdr);
			assert_int_equal(e.hdr.ext_types_n, 0);
			assert_int_equal(e.hdr.ext_count, p->ext_n < 255 ? p->ext_n : 255);
		} else if (rc != -DECODE_BAD_RECORD) {
			/* The types the count promises are not all there. */
			fail_msg("hdr_len %zu of %zu: got %d, want a malformed record", k, full, rc);
		}
	}
	kernel_record(&r, p, no_tcp);
	assert_int_equal(decode_rec(&r, base + full, &e), DECODE_OK);
	assert_int_equal(!!e.hdr.l4_error, no_tcp);
}

static void test_record_every_cut(void **state)
{
	struct tcp_spec t = tcp_default;
	struct pkt p;

	(void)state;
	t.doff = 11;
	build_v4_opts(&p, &t);
	check_record_cuts(&p, false);
	check_record_cuts(&p, true);
	build_chain(&p, 0, &t);
	check_record_cuts(&p, false);
	check_record_cuts(&p, true);
	build_chain(&p, 9, &t);
	check_record_cuts(&p, false);
	check_record_cuts(&p, true);
	t.doff = 15;
	build_chain(&p, 300, &t);
	check_record_cuts(&p, false);
	check_record_cuts(&p, true);
}

/* Records whose chain fields do not match their bytes are refused, never half-read. */
static void test_record_chain_malformed(void **state)
{
	struct pkt_record r;
	struct pkt_event e;
	struct pkt p;
	size_t size;

	(void)state;
	build_chain(&p, 9, &tcp_default);
	/* More types counted than hdr[] has room for. */
	size = kernel_record(&r, &p, false);
	r.ext_count = 10;
	assert_int_equal(decode_rec(&r, size, &e), -DECODE_BAD_RECORD);
	r.ext_count = 200;
	assert_int_equal(decode_rec(&r, size, &e), -DECODE_BAD_RECORD);
	size = kernel_record(&r, &p, true);
	r.ext_count = 255;
	assert_int_equal(decode_rec(&r, size, &e), -DECODE_BAD_RECORD);
	/* A count without a length, a length without a count. */
	size = kernel_record(&r, &p, false);
	r.ext_len = 0;
	assert_int_equal(decode_rec(&r, size, &e), -DECODE_BAD_RECORD);
	build_chain(&p, 0, &tcp_default);
	size = kernel_record(&r, &p, false);
	r.ext_len = 8;
	assert_int_equal(decode_rec(&r, size, &e), -DECODE_BAD_RECORD);
	/* A list that does not start with the type the fixed header names. */
	build_chain(&p, 3, &tcp_default);
	size = kernel_record(&r, &p, false);
	r.hdr[r.hdr_len - 3] = IPPROTO_DSTOPTS;
	assert_int_equal(decode_rec(&r, size, &e), -DECODE_BAD_RECORD);
	r.hdr[r.hdr_len - 3] = IPPROTO_HOPOPTS;
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	/* IPv4 has no chain. */
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_tcp(&p, &tcp_default);
	size = kernel_record(&r, &p, false);
	r.ext_count = 1;
	r.ext_len = 8;
	assert_int_equal(decode_rec(&r, size, &e), -DECODE_BAD_RECORD);
	/* hdr_len past the record, or past hdr[]. */
	build_chain(&p, 2, &tcp_default);
	size = kernel_record(&r, &p, false);
	assert_int_equal(decode_rec(&r, size - 1, &e), -DECODE_BAD_RECORD);
	r.hdr_len = PKT_HDR_MAX + 1;
	assert_int_equal(decode_rec(&r, sizeof(r), &e), -DECODE_BAD_RECORD);
}

/* main.c's hold needs the addresses and ports of held packets: the record decoder gives them. */
static void test_record_headers_direct(void **state)
{
	struct pkt_record r;
	struct pkt_headers h;
	struct pkt p;
	size_t size;

	(void)state;
	build_chain(&p, 20, &tcp_default);
	size = kernel_record(&r, &p, false);
	memset(&h, 0x5a, sizeof(h));
	assert_int_equal(decode_record_headers(&r, size, &h), DECODE_OK);
	assert_tcp_fields(&h, &tcp_default);
	assert_v6_addrs(&h);
	assert_chain(&h, &p);
	r.kind = PKT_REC_CLAIM;
	assert_int_equal(decode_record_headers(&r, size, &h), -DECODE_BAD_RECORD);
	assert_int_equal(decode_record_headers(NULL, 0, &h), -DECODE_BAD_RECORD);
	assert_false(decode_error_is_partial(DECODE_OK));
	assert_false(decode_error_is_partial(DECODE_BAD_RECORD));
	assert_true(decode_error_is_partial(DECODE_NO_L4));
}

/*
 * TCP options. opts_decode() builds an IPv4 packet (or IPv6 behind a chain) whose TCP header
 * carries these option bytes (a multiple of 4), with tail bytes of payload after it that a walk
 * past the header would misread, and decodes it as a raw packet and as a kernel record: both
 * must give the same options.
 */
static const uint8_t opt_tail[8] = { 2, 4, 0x11, 0x11, 3, 3, 14, 0 };

static void opts_decode(const uint8_t *opt, size_t n, bool v6, struct tcp_opts *out)
{
	struct tcp_spec t = tcp_default;
	struct pkt_record r;
	struct pkt_headers h;
	struct pkt_event e;
	struct pkt p;
	size_t size;

	assert_true(n % 4 == 0 && n <= 40);
	t.doff = (uint8_t)(5 + n / 4);
	if (v6)
		build_v6_ext(&p, &t);
	else {
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_tcp(&p, &t);
	}
	memcpy(p.b + p.l4_off + 20, opt, n);
	memcpy(pkt_grow(&p, sizeof(opt_tail)), opt_tail, sizeof(opt_tail));
	if (!v6)
		put16(p.b + 2, (uint16_t)p.len);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_tcp_fields(&h, &t);
	size = kernel_record(&r, &p, false);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_memory_equal(&h.opts, &e.hdr.opts, sizeof(h.opts));
	*out = h.opts;
}

static void assert_order(const struct tcp_opts *o, const uint8_t *kinds, size_t n)
{
	assert_int_equal(o->order_n, n);
	assert_memory_equal(o->order, kinds, n);
}

static void test_opts_none(void **state)
{
	static const uint8_t pad[8] = { 1, 1, 1, 1, 1, 1, 1, 0 };
	struct tcp_opts o;

	(void)state;
	opts_decode(NULL, 0, false, &o);
	assert_int_equal(o.present, 0);
	assert_int_equal(o.order_n, 0);
	assert_false(tcp_opts_shown(&o));
	/* Padding alone is no option to show. */
	opts_decode(pad, sizeof(pad), true, &o);
	assert_int_equal(o.present, TCP_OPT_EOL);
	assert_false(o.malformed);
	assert_false(tcp_opts_shown(&o));
	assert_order(&o, pad, 8);
}

/* What Linux puts in a SYN, and in a data segment. */
static void test_opts_syn_and_data(void **state)
{
	static const uint8_t syn[20] = { 2, 4, 0xff, 0xd7, 4, 2, 8, 10, 0x80, 0, 0, 1,
					 0, 0, 0, 0, 1, 3, 3, 7 };
	static const uint8_t data[12] = { 1, 1, 8, 10, 0xff, 0xff, 0xff, 0xff, 0x12, 0x34, 0x56,
					  0x78 };
	struct tcp_opts o;
	int v6;

	(void)state;
	for (v6 = 0; v6 < 2; v6++) {
		opts_decode(syn, sizeof(syn), v6, &o);
		assert_int_equal(o.present, TCP_OPT_MSS | TCP_OPT_SACK_PERM | TCP_OPT_TS |
						    TCP_OPT_WSCALE);
		assert_int_equal(o.mss, 65495);
		assert_int_equal(o.wscale, 7);
		assert_int_equal(o.ts_val, 0x80000001u);
		assert_int_equal(o.ts_ecr, 0);
		assert_false(o.malformed);
		assert_true(tcp_opts_shown(&o));
		assert_order(&o, (const uint8_t[]){ 2, 4, 8, 1, 3 }, 5);

		opts_decode(data, sizeof(data), v6, &o);
		assert_int_equal(o.present, TCP_OPT_TS);
		assert_int_equal(o.ts_val, 0xffffffffu);
		assert_int_equal(o.ts_ecr, 0x12345678u);
		assert_order(&o, (const uint8_t[]){ 1, 1, 8 }, 3);
	}
}

static void test_opts_each_alone(void **state)
{
	static const struct {
		uint8_t b[4];
		uint8_t bit;
	} one[] = {
		{ { 2, 4, 0x05, 0xb4 }, TCP_OPT_MSS },
		{ { 3, 3, 14, 0 }, TCP_OPT_WSCALE },
		{ { 4, 2, 0, 0 }, TCP_OPT_SACK_PERM },
	};
	static const uint8_t ts[12] = { 8, 10, 0, 0, 0, 7, 0, 0, 0, 9, 0, 0 };
	struct tcp_opts o;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		opts_decode(one[i].b, 4, false, &o);
		assert_int_equal(o.present & ~TCP_OPT_EOL, one[i].bit);
		assert_false(o.malformed);
		assert_int_equal(o.unknown_n, 0);
	}
	opts_decode(one[0].b, 4, false, &o);
	assert_int_equal(o.mss, 1460);
	opts_decode(one[1].b, 4, false, &o);
	assert_int_equal(o.wscale, 14);
	assert_int_equal(o.present, TCP_OPT_WSCALE | TCP_OPT_EOL);
	opts_decode(ts, sizeof(ts), false, &o);
	assert_int_equal(o.present, TCP_OPT_TS | TCP_OPT_EOL);
	assert_int_equal(o.ts_val, 7);
	assert_int_equal(o.ts_ecr, 9);
}

static void test_opts_sack_blocks(void **state)
{
	uint8_t b[40];
	struct tcp_opts o;
	size_t n, i, len;

	(void)state;
	for (n = 1; n <= 4; n++) {
		memset(b, 1, sizeof(b));
		len = 2 + 8 * n;
		b[0] = 5;
		b[1] = (uint8_t)len;
		for (i = 0; i < 2 * n; i++)
			put32(b + 2 + 4 * i, 0xfffffff0u + (uint32_t)i);
		opts_decode(b, (len + 3) / 4 * 4, n % 2, &o);
		assert_int_equal(o.present, TCP_OPT_SACK);
		assert_int_equal(o.sack_n, n);
		for (i = 0; i < n; i++) {
			assert_int_equal(o.sack[i][0], 0xfffffff0u + 2 * i);
			assert_int_equal(o.sack[i][1], 0xfffffff1u + 2 * i);
		}
		assert_false(o.malformed);
		assert_int_equal(o.order[0], 5);
	}
	/* Not a whole number of blocks, or none: skipped as malformed, the walk goes on. */
	for (len = 2; len <= 34; len++) {
		if (len > 2 && (len - 2) % 8 == 0)
			continue;
		memset(b, 0, sizeof(b));
		b[0] = 5;
		b[1] = (uint8_t)len;
		b[len] = 2;
		b[len + 1] = 4;
		b[len + 3] = 9;
		opts_decode(b, 40, false, &o);
		assert_true(o.malformed);
		assert_int_equal(o.sack_n, 0);
		assert_int_equal(o.present & ~TCP_OPT_EOL, TCP_OPT_MSS);
		assert_int_equal(o.mss, 9);
	}
}

static void test_opts_tfo(void **state)
{
	uint8_t b[40];
	struct tcp_opts o;
	size_t len, i;

	(void)state;
	/* Kind 34: a request (no cookie), and every cookie length up to 38 bytes. */
	for (len = 2; len <= 40; len++) {
		memset(b, 0, sizeof(b));
		b[0] = 34;
		b[1] = (uint8_t)len;
		for (i = 2; i < len; i++)
			b[i] = (uint8_t)(0xa0 + i);
		opts_decode(b, 40, len % 2, &o);
		assert_int_equal(o.present & ~TCP_OPT_EOL, TCP_OPT_TFO);
		assert_int_equal(o.tfo_len, len - 2);
		assert_memory_equal(o.tfo_cookie, b + 2, len - 2);
		assert_false(o.malformed);
		assert_int_equal(o.order[0], TCP_KIND_TFO);
	}
	/* Kind 254 with the TFO magic, before kind 34 had a number; without it, unknown. */
	for (len = 2; len <= 40; len++) {
		memset(b, 0, sizeof(b));
		b[0] = 254;
		b[1] = (uint8_t)len;
		if (len >= 4)
			put16(b + 2, 0xf989);
		for (i = 4; i < len; i++)
			b[i] = (uint8_t)i;
		opts_decode(b, 40, false, &o);
		if (len < 4) {
			assert_int_equal(o.present & ~TCP_OPT_EOL, 0);
			assert_int_equal(o.unknown_n, 1);
			assert_int_equal(o.unknown[0].kind, 254);
			assert_int_equal(o.unknown[0].len, len);
			assert_int_equal(o.order[0], 254);
			continue;
		}
		assert_int_equal(o.present & ~TCP_OPT_EOL, TCP_OPT_TFO);
		assert_int_equal(o.tfo_len, len - 4);
		assert_memory_equal(o.tfo_cookie, b + 4, len - 4);
		assert_int_equal(o.order[0], TCP_KIND_TFO);
		assert_int_equal(o.unknown_n, 0);
	}
	b[0] = 254;
	b[1] = 8;
	put16(b + 2, 0xf98a);
	opts_decode(b, 8, false, &o);
	assert_int_equal(o.present, 0);
	assert_int_equal(o.unknown_n, 1);
	assert_int_equal(o.unknown[0].len, 8);
}

static void test_opts_unknown(void **state)
{
	static const uint8_t kinds[] = { 6, 7, 9, 19, 28, 29, 30, 69, 253, 255 };
	uint8_t b[40];
	struct tcp_opts o;
	size_t i;

	(void)state;
	/* Every other kind is unknown, with its length. */
	for (i = 0; i < sizeof(kinds); i++) {
		memset(b, 0, sizeof(b));
		b[0] = kinds[i];
		b[1] = (uint8_t)(2 + i * 3);
		opts_decode(b, 40, i % 2, &o);
		assert_int_equal(o.present & ~TCP_OPT_EOL, 0);
		assert_int_equal(o.unknown_n, 1);
		assert_int_equal(o.unknown[0].kind, kinds[i]);
		assert_int_equal(o.unknown[0].len, 2 + i * 3);
		assert_true(tcp_opts_shown(&o));
		assert_false(o.malformed);
	}
	/* As many as fit: twenty of two bytes, in wire order. */
	for (i = 0; i < 20; i++) {
		b[2 * i] = (uint8_t)(100 + i);
		b[2 * i + 1] = 2;
	}
	opts_decode(b, 40, false, &o);
	assert_int_equal(o.unknown_n, 20);
	assert_int_equal(o.order_n, 20);
	for (i = 0; i < 20; i++) {
		assert_int_equal(o.unknown[i].kind, 100 + i);
		assert_int_equal(o.order[i], 100 + i);
	}
	assert_false(o.malformed);
}

/* A length below 2, or past the header, ends the walk: what came before stays. */
static void test_opts_bad_lengths(void **state)
{
	static const uint8_t kinds[] = { 2, 3, 4, 5, 8, 34, 254, 30 };
	uint8_t b[40];
	struct tcp_opts o;
	size_t k, len, hdr;

	(void)state;
	for (k = 0; k < sizeof(kinds); k++) {
		for (len = 0; len < 2; len++) {
			memset(b, 2, sizeof(b));
			memcpy(b, (const uint8_t[]){ 1, 3, 3, 5 }, 4);
			b[4] = kinds[k];
			b[5] = (uint8_t)len;
			opts_decode(b, 12, false, &o);
			assert_true(o.malformed);
			assert_true(tcp_opts_shown(&o));
			assert_int_equal(o.present, TCP_OPT_WSCALE);
			assert_int_equal(o.wscale, 5);
			assert_int_equal(o.unknown_n, 0);
			assert_order(&o, (const uint8_t[]){ 1, 3 }, 2);
		}
		/* One byte past the header, whatever room the header has. */
		for (hdr = 4; hdr <= 40; hdr += 4) {
			memset(b, 0, sizeof(b));
			memset(b, 1, hdr - 2);
			b[hdr - 2] = kinds[k];
			b[hdr - 1] = 3;
			opts_decode(b, hdr, hdr % 8 == 0, &o);
			assert_true(o.malformed);
			assert_int_equal(o.present, 0);
			assert_int_equal(o.unknown_n, 0);
			assert_int_equal(o.order_n, hdr - 2);
		}
		/* A kind in the last byte of the header has no length: malformed too. */
		memset(b, 1, sizeof(b));
		b[39] = kinds[k];
		opts_decode(b, 40, false, &o);
		assert_true(o.malformed);
		assert_int_equal(o.order_n, 39);
		/* The whole header in one option: fine for TFO and unknown kinds, bad for the others. */
		memset(b, 0, sizeof(b));
		b[0] = kinds[k];
		b[1] = 40;
		opts_decode(b, 40, false, &o);
		assert_int_equal(o.malformed, kinds[k] <= TCP_KIND_TS);
	}
}

/* A length wrong for its kind, or an option seen before: skipped and flagged, the walk goes on. */
static void test_opts_wrong_size_and_repeats(void **state)
{
	static const struct {
		uint8_t kind;
		uint8_t good;
	} fixed[] = { { 2, 4 }, { 3, 3 }, { 4, 2 }, { 8, 10 } };
	uint8_t b[40];
	struct tcp_opts o;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		for (len = 2; len <= 12; len++) {
			memset(b, 0, sizeof(b));
			b[0] = fixed[i].kind;
			b[1] = (uint8_t)len;
			memset(b + 2, 0x77, len - 2);
			b[len] = 30; /* an unknown option after it */
			b[len + 1] = 2;
			opts_decode(b, 40, false, &o);
			assert_int_equal(o.malformed, len != fixed[i].good);
			assert_int_equal(!!(o.present & ~TCP_OPT_EOL), len == fixed[i].good);
			assert_int_equal(o.unknown_n, 1);
			assert_int_equal(o.unknown[0].kind, 30);
			assert_int_equal(o.order_n, 1 + (len == fixed[i].good) + 1 /* EOL */);
		}
	}
	/* Repeats: the first one counts. */
	memcpy(b, (const uint8_t[]){ 2, 4, 0, 100, 2, 4, 0, 200, 3, 3, 1, 3, 3, 2, 4, 2, 4, 2,
				     8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 8, 10, 0, 0, 0, 3, 0, 0, 0, 4,
				     1, 0 },
	       40);
	opts_decode(b, 40, false, &o);
	assert_true(o.malformed);
	assert_int_equal(o.mss, 100);
	assert_int_equal(o.wscale, 1);
	assert_int_equal(o.ts_val, 1);
	assert_int_equal(o.ts_ecr, 2);
	assert_order(&o, (const uint8_t[]){ 2, 3, 4, 8, 1, 0 }, 6);
	memcpy(b, (const uint8_t[]){ 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 5, 10, 0, 0, 0, 3, 0, 0, 0, 4,
				     34, 4, 1, 2, 254, 6, 0xf9, 0x89, 3, 4, 34, 2, 1, 1, 1, 1,
				     1, 1, 1, 1 },
	       40);
	opts_decode(b, 40, true, &o);
	assert_true(o.malformed);
	assert_int_equal(o.sack_n, 1);
	assert_int_equal(o.sack[0][1], 2);
	assert_int_equal(o.tfo_len, 2);
	assert_memory_equal(o.tfo_cookie, ((const uint8_t[]){ 1, 2 }), 2);
	assert_order(&o, (const uint8_t[]){ 5, 34, 1, 1, 1, 1, 1, 1, 1, 1 }, 10);
}

/* 40 bytes of options, a header's most: the option-end and snapshot-cut tests walk them. */
static const uint8_t opts_all[40] = {
	2, 4, 0x05, 0xb4,				    /* MSS, ends at 4 */
	1, 3, 3, 7,					    /* NOP, wscale, ends at 8 */
	8, 10, 0, 0, 0, 5, 0, 0, 0, 6,			    /* TS, ends at 18 */
	1, 1,						    /* ends at 20 */
	5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, /* SACK, ends at 38 */
	1, 1,
};

/*
 * The header ends where data offset says: an option that runs past it is malformed, bytes after
 * it (payload) are never read as options, and a packet cut anywhere inside the options has no
 * TCP fields (nor options) at all.
 */
static void test_opts_header_end(void **state)
{
	struct tcp_spec t = tcp_default;
	struct tcp_opts o;
	struct pkt_headers h;
	struct pkt p;
	size_t hdr, cut;

	(void)state;
	for (hdr = 0; hdr <= 40; hdr += 4) {
		opts_decode(opts_all, hdr, false, &o);
		assert_int_equal(!!(o.present & TCP_OPT_MSS), hdr >= 4);
		assert_int_equal(!!(o.present & TCP_OPT_WSCALE), hdr >= 8);
		assert_int_equal(!!(o.present & TCP_OPT_TS), hdr >= 20);
		assert_int_equal(!!(o.present & TCP_OPT_SACK), hdr >= 40);
		assert_int_equal(o.malformed, (hdr > 8 && hdr < 20) || (hdr > 20 && hdr < 40));
		/* opt_tail (MSS 0x1111, wscale 14) follows the header and is never seen. */
		if (hdr >= 4)
			assert_int_equal(o.mss, 1460);
		if (hdr >= 8)
			assert_int_equal(o.wscale, 7);
	}
	t.doff = 15;
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_tcp(&p, &t);
	memcpy(p.b + p.l4_off + 20, opts_all, sizeof(opts_all));
	for (cut = p.l4_off + 20; cut < p.len; cut++) {
		memset(&h, 0xaa, sizeof(h));
		assert_int_equal(decode_exact(p.b, cut, &h), DECODE_OK);
		assert_int_equal(h.l4_error, DECODE_TRUNCATED_TCP);
		assert_int_equal(h.opts.present, 0);
		assert_int_equal(h.opts.order_n, 0);
		assert_false(tcp_opts_shown(&h.opts));
	}
}

/*
 * decode_headers_snap (-r): a header a capture cut inside its options keeps the fixed fields and
 * the options before the cut; opts.cut says whether the cut fell between options (or inside an
 * option's kind and length bytes) or inside an option's data, and which.
 */
static void test_opts_snap_cut(void **state)
{
	/* Where each option starts and its kind; a cut at k bytes falls in the last one <= k. */
	static const struct {
		size_t start, end;
		uint8_t kind;
	} at[] = {{0, 4, 2}, {4, 5, 1}, {5, 8, 3}, {8, 18, 8}, {18, 19, 1}, {19, 20, 1},
		  {20, 38, 5}, {38, 39, 1}, {39, 40, 1}};
	struct tcp_spec t = tcp_default;
	struct pkt_headers h;
	struct pkt p;
	size_t k, i;

	(void)state;
	t.doff = 15;
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_tcp(&p, &t);
	memcpy(p.b + p.l4_off + 20, opts_all, sizeof(opts_all));
	for (k = 0; k < 40; k++) {
		memset(&h, 0xaa, sizeof(h));
		assert_int_equal(decode_headers_snap(p.b, p.l4_off + 20 + k, &h), DECODE_OK);
		assert_tcp_fields(&h, &t);
		for (i = 0; at[i].end <= k; i++)
			;
		/* Options wholly before the cut are there, the cut one is not. */
		assert_int_equal(!!(h.opts.present & TCP_OPT_MSS), k >= 4);
		assert_int_equal(!!(h.opts.present & TCP_OPT_WSCALE), k >= 8);
		assert_int_equal(!!(h.opts.present & TCP_OPT_TS), k >= 18);
		assert_int_equal(!!(h.opts.present & TCP_OPT_SACK), k >= 38);
		assert_int_equal(h.opts.order_n, i);
		assert_false(h.opts.malformed);
		if (k - at[i].start >= 2) {
			assert_int_equal(h.opts.cut, TCP_CUT_IN_OPTION);
			assert_int_equal(h.opts.cut_kind, at[i].kind);
		} else {
			assert_int_equal(h.opts.cut, TCP_CUT_AT_OPTION);
		}
		assert_true(tcp_opts_shown(&h.opts));
	}
	/* Whole: no cut; and decode_headers still refuses a cut header. */
	assert_int_equal(decode_headers_snap(p.b, p.len, &h), DECODE_OK);
	assert_int_equal(h.opts.cut, TCP_CUT_NONE);
	assert_int_equal(h.opts.order_n, 9);
	assert_int_equal(decode_headers(p.b, p.len - 1, &h), DECODE_OK);
	assert_int_equal(h.l4_error, DECODE_TRUNCATED_TCP);
	/* Fewer than the fixed 20 bytes: a truncated header, as without a snapshot. */
	assert_int_equal(decode_headers_snap(p.b, p.l4_off + 19, &h), DECODE_OK);
	assert_int_equal(h.l4_error, DECODE_TRUNCATED_TCP);
}

/* --- Flow records --- */

static size_t flow_rec(struct pkt_record *r, int family, uint8_t flags)
{
	struct pkt_flow f = {};

	memset(r, 0, sizeof(*r));
	r->kind = PKT_REC_FLOW;
	r->flags = flags;
	r->ts_ns = 1000;
	r->owner.pid = 42;
	memcpy(r->owner.comm, "curl", 5);
	f.conn.family = family;
	f.conn.lport = 40000;
	f.conn.rport = 443;
	if (family == 4) {
		memcpy(f.conn.laddr, (uint8_t[]){ 10, 0, 0, 1 }, 4);
		memcpy(f.conn.raddr, (uint8_t[]){ 10, 0, 0, 2 }, 4);
	} else {
		f.conn.laddr[15] = 1;
		f.conn.raddr[0] = 0xfe;
		f.conn.raddr[1] = 0x80;
		f.conn.raddr[15] = 2;
	}
	f.duration_ns = 5000000;
	f.bytes_acked = 102; /* SYN + 100 + FIN */
	f.bytes_received = 3001;
	f.segs_out = 6;
	f.segs_in = 5;
	f.data_segs_out = 1;
	f.data_segs_in = 2;
	f.total_retrans = 1;
	f.bytes_retrans = 100;
	f.srtt_us = 250;
	f.min_rtt_us = ~0U; /* no sample */
	f.delivered_ce = 3;
	f.close_reason = PKT_CLOSE_FIN;
	f.closed_first = PKT_CLOSER_LOCAL;
	r->hdr_len = sizeof(f);
	memcpy(r->hdr, &f, sizeof(f));
	return offsetof(struct pkt_record, hdr) + sizeof(f);
}

static void test_flow_begin_outgoing(void **state)
{
	static struct pkt_record r;
	struct pkt_event e;
	uint64_t uts;
	size_t n = flow_rec(&r, 4, 0);

	(void)state;
	assert_int_equal(decode_flow_record(&r, n, 10, &e, &uts), 0);
	assert_int_equal(e.event, EVENT_NET_FLOW_TCP_BEGIN);
	assert_int_equal(e.timestamp_ns, 1010);
	assert_false(e.flow.end);
	assert_true(e.flow.outgoing);
	assert_int_equal(e.flow.family, AF_INET);
	/* src is the initiator: the local side */
	assert_memory_equal(e.flow.src_addr, ((uint8_t[]){ 10, 0, 0, 1 }), 4);
	assert_memory_equal(e.flow.dst_addr, ((uint8_t[]){ 10, 0, 0, 2 }), 4);
	assert_int_equal(e.flow.src_port, 40000);
	assert_int_equal(e.flow.dst_port, 443);
	/* a begin carries no summary */
	assert_int_equal(e.flow.bytes_sent, 0);
	assert_int_equal(e.flow.segs_sent, 0);
	assert_int_equal(e.proc.pid, 42);
	assert_string_equal(e.proc.comm, "curl");
}

static void test_flow_end_summary(void **state)
{
	static struct pkt_record r;
	struct pkt_event e;
	uint64_t uts;
	size_t n = flow_rec(&r, 4, PKT_FLOW_END | PKT_FLOW_BEGIN_SEEN | PKT_FLOW_FIN_ACKED);

	(void)state;
	assert_int_equal(decode_flow_record(&r, n, 0, &e, &uts), 0);
	assert_int_equal(e.event, EVENT_NET_FLOW_TCP_END);
	assert_true(e.flow.end && e.flow.begin_seen && e.flow.outgoing);
	assert_int_equal(e.flow.duration_ns, 5000000);
	/* the active side's SYN and the acked FIN are taken out of bytes_acked */
	assert_int_equal(e.flow.bytes_sent, 100);
	assert_int_equal(e.flow.bytes_received, 3001);
	assert_int_equal(e.flow.segs_sent, 6);
	assert_int_equal(e.flow.segs_received, 5);
	assert_int_equal(e.flow.data_segs_sent, 1);
	assert_int_equal(e.flow.data_segs_received, 2);
	assert_int_equal(e.flow.retrans_segs, 1);
	assert_int_equal(e.flow.retrans_bytes, 100);
	assert_int_equal(e.flow.srtt_us, 250);
	assert_int_equal(e.flow.min_rtt_us, 0); /* ~0: no sample */
	assert_int_equal(e.flow.delivered_ce, 3);
	assert_string_equal(flow_close_reason_name(e.flow.close_reason), "fin");
	assert_string_equal(flow_closer_name(e.flow.closed_first), "local");
}

static void test_flow_end_passive(void **state)
{
	static struct pkt_record r;
	struct pkt_flow *f = (struct pkt_flow *)r.hdr;
	struct pkt_event e;
	uint64_t uts;
	size_t n = flow_rec(&r, 6, PKT_FLOW_END | PKT_FLOW_PASSIVE);

	(void)state;
	f->close_reason = PKT_CLOSE_RST_RECEIVED;
	assert_int_equal(decode_flow_record(&r, n, 0, &e, &uts), 0);
	assert_false(e.flow.outgoing);
	assert_false(e.flow.begin_seen);
	assert_int_equal(e.flow.duration_ns, 0); /* begin not seen: no duration */
	assert_int_equal(e.flow.family, AF_INET6);
	/* src is the initiator: the peer */
	assert_int_equal(e.flow.src_addr[0], 0xfe);
	assert_int_equal(e.flow.dst_addr[15], 1);
	assert_int_equal(e.flow.src_port, 443);
	assert_int_equal(e.flow.dst_port, 40000);
	/* passive, no FIN acked: bytes_acked as it is */
	assert_int_equal(e.flow.bytes_sent, 102);
	assert_string_equal(flow_close_reason_name(e.flow.close_reason), "rst_received");
}

/* A FIN acked, then a reset (SO_LINGER 0 in FIN_WAIT2): the FIN is taken out all the same. */
static void test_flow_end_fin_then_rst(void **state)
{
	static struct pkt_record r;
	struct pkt_flow *f = (struct pkt_flow *)r.hdr;
	struct pkt_event e;
	uint64_t uts;
	size_t n = flow_rec(&r, 4, PKT_FLOW_END | PKT_FLOW_FIN_ACKED);

	(void)state;
	f->close_reason = PKT_CLOSE_RST_SENT;
	assert_int_equal(decode_flow_record(&r, n, 0, &e, &uts), 0);
	assert_int_equal(e.flow.bytes_sent, 100);
	assert_string_equal(flow_close_reason_name(e.flow.close_reason), "rst_sent");
	/* a FIN with no ack (the flag clear) stays in */
	r.flags &= ~PKT_FLOW_FIN_ACKED;
	assert_int_equal(decode_flow_record(&r, n, 0, &e, &uts), 0);
	assert_int_equal(e.flow.bytes_sent, 101);
}

static void test_flow_bad_records(void **state)
{
	static struct pkt_record r;
	struct pkt_flow *f = (struct pkt_flow *)r.hdr;
	struct pkt_event e;
	uint64_t uts;
	size_t n;

	(void)state;
	n = flow_rec(&r, 4, 0);
	assert_int_equal(decode_flow_record(&r, n - 1, 0, &e, &uts), -DECODE_BAD_RECORD);
	assert_int_equal(decode_flow_record(&r, offsetof(struct pkt_record, hdr) - 1, 0, &e, &uts),
			 -DECODE_BAD_RECORD);
	r.hdr_len--;
	assert_int_equal(decode_flow_record(&r, n, 0, &e, &uts), -DECODE_BAD_RECORD);
	n = flow_rec(&r, 4, 0);
	r.kind = PKT_REC_CLAIM;
	assert_int_equal(decode_flow_record(&r, n, 0, &e, &uts), -DECODE_BAD_RECORD);
	n = flow_rec(&r, 5, 0);
	assert_int_equal(decode_flow_record(&r, n, 0, &e, &uts), -DECODE_BAD_RECORD);
	n = flow_rec(&r, 4, 0);
	f->close_reason = PKT_CLOSE_TIMEOUT + 1;
	assert_int_equal(decode_flow_record(&r, n, 0, &e, &uts), -DECODE_BAD_RECORD);
	n = flow_rec(&r, 4, 0);
	f->closed_first = 3;
	assert_int_equal(decode_flow_record(&r, n, 0, &e, &uts), -DECODE_BAD_RECORD);
	/* a packet decoder never takes a flow record */
	n = flow_rec(&r, 4, 0);
	assert_int_equal(decode_record_headers(&r, n, &e.hdr), -DECODE_BAD_RECORD);
	assert_string_equal(flow_close_reason_name(99), "unknown");
}

/* --- Transports other than TCP, and every IP header field --- */

/* UDP header; also fixes up the IP length field. len 0: the header's own length, 8. */
static void pkt_udp(struct pkt *p, uint16_t sport, uint16_t dport, uint16_t len, uint16_t csum)
{
	uint8_t *h;

	p->b[p->next_off] = IPPROTO_UDP;
	p->l4_off = p->len;
	p->l4_len = 8;
	h = pkt_grow(p, 8);
	put16(h, sport);
	put16(h + 2, dport);
	put16(h + 4, len);
	put16(h + 6, csum);
	if ((p->b[0] >> 4) == 4)
		put16(p->b + 2, (uint16_t)p->len);
	else
		put16(p->b + 4, (uint16_t)(p->len - 40));
}

/* ICMP (IPv4) or ICMPv6 (IPv6) header of 8 bytes. */
static void pkt_icmp(struct pkt *p, uint8_t type, uint8_t code, uint16_t csum, uint16_t id,
		     uint16_t seq)
{
	uint8_t *h;
	bool v6 = (p->b[0] >> 4) == 6;

	p->b[p->next_off] = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	p->l4_off = p->len;
	p->l4_len = 8;
	h = pkt_grow(p, 8);
	h[0] = type;
	h[1] = code;
	put16(h + 2, csum);
	put16(h + 4, id);
	put16(h + 6, seq);
	if (v6)
		put16(p->b + 4, (uint16_t)(p->len - 40));
	else
		put16(p->b + 2, (uint16_t)p->len);
}

/* The chain of build_chain() without its TCP header: the transport is the caller's. */
static void build_chain_only(struct pkt *p, size_t n)
{
	build_chain(p, n, &tcp_default);
	p->len -= p->l4_len;
	p->l4_off = p->l4_len = 0;
	put16(p->b + 4, (uint16_t)(p->len - 40));
}

/* p decodes OK from the packet into *h and, to the same headers, from its kernel record. */
static void decode_both(const struct pkt *p, struct pkt_headers *h)
{
	struct pkt_record r;
	struct pkt_event e;
	size_t size;

	assert_int_equal(decode_pkt(p, h), DECODE_OK);
	size = kernel_record(&r, p, false);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_memory_equal(&e.hdr, h, sizeof(*h));
}

static void assert_udp(const struct pkt_headers *h, uint16_t sport, uint16_t dport,
		       uint16_t len, uint16_t csum)
{
	assert_int_equal(h->l4_error, 0);
	assert_int_equal(h->protocol, IPPROTO_UDP);
	assert_int_equal(h->src_port, sport);
	assert_int_equal(h->dst_port, dport);
	assert_int_equal(h->udp_len, len);
	assert_int_equal(h->checksum, csum);
	assert_int_equal(h->icmp_type, 0);
	assert_int_equal(h->icmp_id, 0);
	assert_no_tcp_only_fields(h);
}

static void assert_icmp(const struct pkt_headers *h, uint8_t proto, uint8_t type, uint8_t code,
			uint16_t csum, uint16_t id, uint16_t seq)
{
	assert_int_equal(h->l4_error, 0);
	assert_int_equal(h->protocol, proto);
	assert_int_equal(h->icmp_type, type);
	assert_int_equal(h->icmp_code, code);
	assert_int_equal(h->checksum, csum);
	assert_int_equal(h->icmp_id, id);
	assert_int_equal(h->icmp_seq, seq);
	assert_int_equal(h->src_port, 0);
	assert_int_equal(h->dst_port, 0);
	assert_int_equal(h->udp_len, 0);
	assert_no_tcp_only_fields(h);
}

/* Every IPv4 header field, with high bits set, from the packet and from its record. */
static void test_ipv4_header_fields(void **state)
{
	static const uint8_t rr[12] = { 1, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint16_t frags[] = { 0x0000, 0x4000, 0x2000, 0x8000, 0xe000 };
	struct pkt_headers h;
	struct pkt p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
		pkt_ipv4(&p, rr, sizeof(rr), frags[i]);
		p.b[1] = 0xb8; /* DSCP EF */
		put16(p.b + 4, 0xfedc);
		p.b[8] = 0xff;
		put16(p.b + 10, 0x9abc);
		pkt_udp(&p, 53, 0x8001, 0x1234, 0xfffe);
		decode_both(&p, &h);
		assert_v4_addrs(&h);
		assert_int_equal(h.ip_version, 4);
		assert_int_equal(h.ihl, 8);
		assert_int_equal(h.tos, 0xb8);
		assert_int_equal(h.ip_len, 32 + 8);
		assert_int_equal(h.ip_id, 0xfedc);
		assert_int_equal(h.ip_flags, frags[i] >> 13);
		assert_int_equal(h.frag_off, 0);
		assert_int_equal(h.ttl, 0xff);
		assert_int_equal(h.next_header, IPPROTO_UDP);
		assert_int_equal(h.ip_checksum, 0x9abc);
		assert_int_equal(h.flow_label, 0);
		assert_int_equal(h.ext_count, 0);
	}
	/* A later fragment with every flag: the offset's 13 bits, the flags' 3, no transport. */
	pkt_ipv4(&p, NULL, 0, 0xffff);
	pkt_udp(&p, 1, 2, 3, 4);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_int_equal(h.l4_error, DECODE_FRAGMENT);
	assert_int_equal(h.ip_flags, 7);
	assert_int_equal(h.frag_off, 0x1fff);
	assert_int_equal(h.ihl, 5);
	assert_int_equal(h.ttl, 64);
	assert_int_equal(h.ip_id, 0x1234);
	assert_int_equal(h.protocol, IPPROTO_UDP);
	assert_int_equal(h.src_port, 0);
	assert_int_equal(h.udp_len, 0);
	assert_int_equal(h.checksum, 0);
}

/* Every IPv6 fixed-header field; the next header is the fixed header's, the protocol the end's. */
static void test_ipv6_header_fields(void **state)
{
	struct pkt_record r;
	struct pkt_event e;
	struct pkt_headers h;
	struct pkt p;
	size_t size;

	(void)state;
	pkt_ipv6(&p);
	put32(p.b, 0x6abfedcb); /* traffic class 0xab, flow label 0xfedcb */
	p.b[7] = 0xfe;
	pkt_udp(&p, 5353, 5353, 8, 0x8000);
	decode_both(&p, &h);
	assert_v6_addrs(&h);
	assert_int_equal(h.ip_version, 6);
	assert_int_equal(h.tos, 0xab);
	assert_int_equal(h.flow_label, 0xfedcb);
	assert_int_equal(h.ip_len, 8);
	assert_int_equal(h.next_header, IPPROTO_UDP);
	assert_int_equal(h.ttl, 0xfe);
	assert_int_equal(h.ihl, 0);
	assert_int_equal(h.ip_id, 0);
	assert_int_equal(h.ip_flags, 0);
	assert_int_equal(h.ip_checksum, 0);

	/* Behind a chain: the fixed header names its first header, the event its transport. */
	build_chain_only(&p, 3);
	put32(p.b, 0x6fffffff);
	pkt_udp(&p, 1, 2, 8, 3);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_int_equal(h.tos, 0xff);
	assert_int_equal(h.flow_label, 0xfffff);
	assert_int_equal(h.ip_len, p.len - 40);
	assert_int_equal(h.next_header, IPPROTO_HOPOPTS);
	assert_int_equal(h.protocol, IPPROTO_UDP);
	size = kernel_record(&r, &p, false);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.hdr.next_header, IPPROTO_HOPOPTS);
	assert_int_equal(e.hdr.flow_label, 0xfffff);
	assert_int_equal(e.hdr.ip_len, p.len - 40);
	assert_udp(&e.hdr, 1, 2, 8, 3);
	assert_chain(&e.hdr, &p);
}

/* UDP over IPv4 and IPv6, from the packet and from the record: ports, length, checksum. */
static void test_udp(void **state)
{
	struct pkt_record r;
	struct pkt_event e;
	struct pkt_headers h;
	struct pkt p;
	size_t size;

	(void)state;
	pkt_ipv4(&p, NULL, 0, 0x4000);
	pkt_udp(&p, 0xffff, 0x8035, 0xfff8, 0xa55a);
	memset(pkt_grow(&p, 32), 0x5a, 32); /* payload is not read */
	decode_both(&p, &h);
	assert_udp(&h, 0xffff, 0x8035, 0xfff8, 0xa55a);
	assert_v4_addrs(&h);
	size = kernel_record(&r, &p, false);
	r.sk_proto = IPPROTO_UDP;
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.sk_proto, IPPROTO_UDP);

	pkt_ipv6(&p);
	pkt_udp(&p, 443, 50000, 1232, 0);
	decode_both(&p, &h);
	assert_udp(&h, 443, 50000, 1232, 0);
	assert_v6_addrs(&h);

	/* UDP-Lite is read as UDP (its coverage in the length field). */
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_udp(&p, 7, 9, 12, 0x1111);
	p.b[9] = IPPROTO_UDPLITE;
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_int_equal(h.protocol, IPPROTO_UDPLITE);
	assert_int_equal(h.src_port, 7);
	assert_int_equal(h.udp_len, 12);
}

/* ICMP and ICMPv6: type, code, checksum, and the echo id and sequence. */
static void test_icmp(void **state)
{
	struct pkt_headers h;
	struct pkt p;

	(void)state;
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_icmp(&p, 8, 0, 0xf7ff, 0xbeef, 0x8001);
	memset(pkt_grow(&p, 56), 0x5a, 56);
	decode_both(&p, &h);
	assert_icmp(&h, IPPROTO_ICMP, 8, 0, 0xf7ff, 0xbeef, 0x8001);

	/* An error: the second word is raw (unused, or the next-hop MTU). */
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_icmp(&p, 3, 4, 0x1234, 0, 1400);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_icmp(&h, IPPROTO_ICMP, 3, 4, 0x1234, 0, 1400);

	pkt_ipv6(&p);
	pkt_icmp(&p, 128, 0, 0x8000, 0xffff, 0xfffe);
	decode_both(&p, &h);
	assert_icmp(&h, IPPROTO_ICMPV6, 128, 0, 0x8000, 0xffff, 0xfffe);

	pkt_ipv6(&p);
	pkt_icmp(&p, 1, 4, 0xabcd, 0, 0);
	assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
	assert_icmp(&h, IPPROTO_ICMPV6, 1, 4, 0xabcd, 0, 0);

	/* Four bytes are a header: type, code and checksum; no id or sequence. */
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_icmp(&p, 8, 0, 0x4242, 0x1111, 0x2222);
	assert_int_equal(decode_exact(p.b, p.len - 4, &h), DECODE_OK);
	assert_icmp(&h, IPPROTO_ICMP, 8, 0, 0x4242, 0, 0);
	assert_int_equal(decode_exact(p.b, p.len - 1, &h), DECODE_OK);
	assert_icmp(&h, IPPROTO_ICMP, 8, 0, 0x4242, 0, 0);
}

/* A UDP header under 8 bytes, an ICMP one under 4: an event with DECODE_TRUNCATED_L4. */
static void test_truncated_l4(void **state)
{
	struct pkt_record r;
	struct pkt_event e;
	struct pkt_headers h;
	struct pkt p;
	size_t cut, size, base = offsetof(struct pkt_record, hdr);
	int fam;

	(void)state;
	for (fam = 4; fam <= 6; fam += 2) {
		size_t ip = fam == 4 ? 20 : 40;

		if (fam == 4)
			pkt_ipv4(&p, NULL, 0, 0);
		else
			pkt_ipv6(&p);
		pkt_udp(&p, 1000, 2000, 8, 0x5555);
		for (cut = 0; cut < 8; cut++) {
			assert_int_equal(decode_exact(p.b, ip + cut, &h), DECODE_OK);
			assert_int_equal(h.l4_error, DECODE_TRUNCATED_L4);
			assert_int_equal(h.protocol, IPPROTO_UDP);
			assert_int_equal(h.src_port, 0);
			assert_int_equal(h.udp_len, 0);
			assert_int_equal(h.checksum, 0);
			assert_int_equal(h.ip_version, fam);
			/* The record the kernel writes for such a packet. */
			size = kernel_record(&r, &p, false);
			r.hdr_len = (uint16_t)(ip + cut);
			assert_int_equal(decode_rec(&r, base + ip + cut, &e), DECODE_OK);
			assert_int_equal(e.hdr.l4_error, DECODE_TRUNCATED_L4);
			(void)size;
		}
		if (fam == 4)
			pkt_ipv4(&p, NULL, 0, 0);
		else
			pkt_ipv6(&p);
		pkt_icmp(&p, 8, 0, 1, 2, 3);
		for (cut = 0; cut < 4; cut++) {
			assert_int_equal(decode_exact(p.b, ip + cut, &h), DECODE_OK);
			assert_int_equal(h.l4_error, DECODE_TRUNCATED_L4);
			assert_int_equal(h.icmp_type, 0);
			assert_int_equal(h.checksum, 0);
		}
	}
	assert_string_equal(decode_strerror(DECODE_TRUNCATED_L4), "truncated transport header");
	assert_true(decode_error_is_partial(DECODE_TRUNCATED_L4));
}

/* Records behind an IPv6 chain: the kernel's l4_proto says what the chain led to. */
static void test_record_chain_to_udp_icmp(void **state)
{
	static const size_t lengths[] = { 1, 5, 9, 64, 65, 300 };
	static const uint8_t ext[] = { IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_FRAGMENT,
				       IPPROTO_DSTOPTS, IPPROTO_AH };
	struct pkt_record r;
	struct pkt_event e;
	struct pkt_headers h;
	struct pkt p;
	size_t i, size;

	(void)state;
	for (i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		build_chain_only(&p, lengths[i]);
		pkt_udp(&p, 4789, 0xfff0, 8, 0xc0de);
		assert_int_equal(decode_pkt(&p, &h), DECODE_OK);
		assert_udp(&h, 4789, 0xfff0, 8, 0xc0de);
		assert_chain(&h, &p);
		size = kernel_record(&r, &p, false);
		assert_int_equal(r.l4_proto, IPPROTO_UDP);
		assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
		assert_udp(&e.hdr, 4789, 0xfff0, 8, 0xc0de);
		assert_chain(&e.hdr, &p);
		assert_v6_addrs(&e.hdr);

		build_chain_only(&p, lengths[i]);
		pkt_icmp(&p, 129, 0, 0x7777, 0x0102, 0x0304);
		size = kernel_record(&r, &p, false);
		assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
		assert_icmp(&e.hdr, IPPROTO_ICMPV6, 129, 0, 0x7777, 0x0102, 0x0304);
		assert_chain(&e.hdr, &p);
	}
	/* A short ICMPv6 packet: the kernel copies its 4 to 7 bytes, then the types. Its id and
	 * sequence are not the type bytes; a UDP header as short is a truncated one (with its
	 * chain). */
	for (i = 4; i < 8; i++) {
		build_chain_only(&p, 9);
		pkt_icmp(&p, 2, 0, 0x1280, 0, 0);
		p.len -= 8 - i;
		p.l4_len = i;
		size = kernel_record(&r, &p, false);
		assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
		assert_icmp(&e.hdr, IPPROTO_ICMPV6, 2, 0, 0x1280, 0, 0);
		assert_chain(&e.hdr, &p);
		build_chain_only(&p, 9);
		pkt_udp(&p, 1, 2, 8, 3);
		p.len -= 8 - i;
		p.l4_len = i;
		size = kernel_record(&r, &p, false);
		assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
		assert_int_equal(e.hdr.l4_error, DECODE_TRUNCATED_L4);
		assert_int_equal(e.hdr.src_port, 0);
		/* The types still stand where the record ends: they are listed. */
		assert_chain(&e.hdr, &p);
		/* Fewer bytes than the types the count promises: malformed. */
		r.hdr_len = (uint16_t)(40 + 8);
		assert_int_equal(decode_rec(&r, offsetof(struct pkt_record, hdr) + 48, &e),
				 -DECODE_BAD_RECORD);
	}
	/* A chain that leads to an extension header is no record the kernel writes. */
	build_chain_only(&p, 4);
	pkt_udp(&p, 1, 2, 8, 3);
	for (i = 0; i < sizeof(ext); i++) {
		size = kernel_record(&r, &p, false);
		r.l4_proto = ext[i];
		assert_int_equal(decode_rec(&r, size, &e), -DECODE_BAD_RECORD);
	}
	/* Without a chain the fixed header says, and l4_proto is not read. */
	pkt_ipv6(&p);
	pkt_udp(&p, 1, 2, 8, 3);
	size = kernel_record(&r, &p, false);
	r.l4_proto = IPPROTO_HOPOPTS;
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_udp(&e.hdr, 1, 2, 8, 3);
	/* A protocol pktrace does not read (ESP): an event without transport fields or error. */
	build_chain_only(&p, 2);
	pkt_udp(&p, 1, 2, 8, 3);
	size = kernel_record(&r, &p, false);
	r.l4_proto = IPPROTO_ESP;
	memmove(r.hdr + 40, r.hdr + 48, 2);
	r.hdr_len -= 8;
	assert_int_equal(decode_rec(&r, size - 8, &e), DECODE_OK);
	assert_int_equal(e.hdr.l4_error, 0);
	assert_int_equal(e.hdr.protocol, IPPROTO_ESP);
	assert_int_equal(e.hdr.src_port, 0);
	assert_chain(&e.hdr, &p);
	/* PKT_F_NO_L4 behind a chain: the protocol is unknown whatever l4_proto says. */
	build_chain_only(&p, 2);
	pkt_udp(&p, 1, 2, 8, 3);
	size = kernel_record(&r, &p, true);
	assert_int_equal(decode_rec(&r, size, &e), DECODE_OK);
	assert_int_equal(e.hdr.l4_error, DECODE_NO_L4);
	assert_int_equal(e.hdr.protocol, IPPROTO_RAW);
}

static event_mask events_of(const struct pkt *p, uint8_t sk_proto)
{
	static struct pkt_event e;

	memset(&e, 0, sizeof(e));
	assert_int_equal(decode_pkt(p, &e.hdr), DECODE_OK);
	e.sk_proto = sk_proto;
	return decode_packet_events(&e);
}

#define EV(x) EVENT_BIT(EVENT_NET_PACKET_##x)

/* Each packet gives its IP event and its transport's; a partial one its socket's. */
static void test_packet_events(void **state)
{
	static const uint8_t sks[] = { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_RAW };
	static struct pkt_event e;
	struct pkt p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sks); i++) {
		/* A whole header: the packet's protocol decides, whatever the socket. */
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_tcp(&p, &tcp_default);
		assert_int_equal(events_of(&p, sks[i]), EV(IPV4) | EV(TCP));
		pkt_ipv6(&p);
		pkt_tcp(&p, &tcp_default);
		assert_int_equal(events_of(&p, sks[i]), EV(IPV6) | EV(TCP));
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_udp(&p, 1, 2, 8, 0);
		assert_int_equal(events_of(&p, sks[i]), EV(IPV4) | EV(UDP));
		p.b[9] = IPPROTO_UDPLITE;
		assert_int_equal(events_of(&p, sks[i]), EV(IPV4) | EV(UDP));
		build_chain_only(&p, 3);
		pkt_udp(&p, 1, 2, 8, 0);
		assert_int_equal(events_of(&p, sks[i]), EV(IPV6) | EV(UDP));
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_icmp(&p, 8, 0, 0, 1, 1);
		assert_int_equal(events_of(&p, sks[i]), EV(IPV4) | EV(ICMP));
		pkt_ipv6(&p);
		pkt_icmp(&p, 128, 0, 0, 1, 1);
		assert_int_equal(events_of(&p, sks[i]), EV(IPV6) | EV(ICMPV6));
		/* A protocol with no event of its own: the IP event alone. */
		pkt_ipv4(&p, NULL, 0, 0);
		pkt_udp(&p, 1, 2, 8, 0);
		p.b[9] = IPPROTO_GRE;
		assert_int_equal(events_of(&p, sks[i]), EV(IPV4));
		pkt_ipv6(&p);
		pkt_udp(&p, 1, 2, 8, 0);
		p.b[6] = IPPROTO_NONE;
		assert_int_equal(events_of(&p, sks[i]), EV(IPV6));
	}
	/* Partial: no transport header read. The socket's class decides, a raw socket's the IP
	 * header's protocol (IPPROTO_RAW behind an unwalked chain: none). */
	memset(&e, 0, sizeof(e));
	e.hdr.family = AF_INET;
	e.hdr.protocol = IPPROTO_UDP;
	e.hdr.l4_error = DECODE_FRAGMENT;
	e.sk_proto = IPPROTO_UDP;
	assert_int_equal(decode_packet_events(&e), EV(IPV4) | EV(UDP));
	e.sk_proto = IPPROTO_RAW;
	assert_int_equal(decode_packet_events(&e), EV(IPV4) | EV(UDP));
	e.sk_proto = IPPROTO_TCP; /* a TCP socket's packet that the kernel saw as UDP */
	assert_int_equal(decode_packet_events(&e), EV(IPV4) | EV(TCP));
	e.hdr.family = AF_INET6;
	e.hdr.protocol = IPPROTO_RAW;
	e.hdr.l4_error = DECODE_NO_L4;
	e.sk_proto = IPPROTO_UDP;
	assert_int_equal(decode_packet_events(&e), EV(IPV6) | EV(UDP));
	e.sk_proto = IPPROTO_ICMP; /* a ping socket: ICMPv6 by its family */
	assert_int_equal(decode_packet_events(&e), EV(IPV6) | EV(ICMPV6));
	e.hdr.family = AF_INET;
	assert_int_equal(decode_packet_events(&e), EV(IPV4) | EV(ICMP));
	e.hdr.family = AF_INET6;
	e.sk_proto = IPPROTO_RAW;
	assert_int_equal(decode_packet_events(&e), EV(IPV6));
	e.sk_proto = IPPROTO_TCP;
	e.hdr.l4_error = DECODE_TRUNCATED_TCP;
	assert_int_equal(decode_packet_events(&e), EV(IPV6) | EV(TCP));
	/* A truncated UDP header from a record: still a UDP event. */
	pkt_ipv4(&p, NULL, 0, 0);
	pkt_udp(&p, 1, 2, 8, 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(decode_exact(p.b, 24, &e.hdr), DECODE_OK);
	assert_int_equal(e.hdr.l4_error, DECODE_TRUNCATED_L4);
	e.sk_proto = IPPROTO_RAW;
	assert_int_equal(decode_packet_events(&e), EV(IPV4) | EV(UDP));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_plain),
		cmocka_unit_test(test_ipv4_options),
		cmocka_unit_test(test_ipv4_max_options),
		cmocka_unit_test(test_ipv4_payload_after_tcp),
		cmocka_unit_test(test_ipv6_plain),
		cmocka_unit_test(test_ipv6_ext_headers),
		cmocka_unit_test(test_ipv6_ah),
		cmocka_unit_test(test_ipv6_six_ext_headers),
		cmocka_unit_test(test_ipv6_ext_chain_unbounded),
		cmocka_unit_test(test_flags_each_alone),
		cmocka_unit_test(test_flags_all_and_reserved),
		cmocka_unit_test(test_truncated_ipv4),
		cmocka_unit_test(test_truncated_ipv6),
		cmocka_unit_test(test_null_empty),
		cmocka_unit_test(test_bad_data_offset),
		cmocka_unit_test(test_data_offset_beyond_buffer),
		cmocka_unit_test(test_opts_snap_cut),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_bad_ihl),
		cmocka_unit_test(test_not_tcp),
		cmocka_unit_test(test_ipv4_fragments),
		cmocka_unit_test(test_ipv6_fragments),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_record_fields),
		cmocka_unit_test(test_record_bad_sizes),
		cmocka_unit_test(test_record_snap),
		cmocka_unit_test(test_chain_lengths),
		cmocka_unit_test(test_big_dstopts),
		cmocka_unit_test(test_hbh160_tcp_options40),
		cmocka_unit_test(test_types_list_saturates),
		cmocka_unit_test(test_record_no_tcp),
		cmocka_unit_test(test_record_every_cut),
		cmocka_unit_test(test_record_chain_malformed),
		cmocka_unit_test(test_record_headers_direct),
		cmocka_unit_test(test_opts_none),
		cmocka_unit_test(test_opts_syn_and_data),
		cmocka_unit_test(test_opts_each_alone),
		cmocka_unit_test(test_opts_sack_blocks),
		cmocka_unit_test(test_opts_tfo),
		cmocka_unit_test(test_opts_unknown),
		cmocka_unit_test(test_opts_bad_lengths),
		cmocka_unit_test(test_opts_wrong_size_and_repeats),
		cmocka_unit_test(test_opts_header_end),
		cmocka_unit_test(test_flow_begin_outgoing),
		cmocka_unit_test(test_flow_end_summary),
		cmocka_unit_test(test_flow_end_passive),
		cmocka_unit_test(test_flow_end_fin_then_rst),
		cmocka_unit_test(test_flow_bad_records),
		cmocka_unit_test(test_ipv4_header_fields),
		cmocka_unit_test(test_ipv6_header_fields),
		cmocka_unit_test(test_udp),
		cmocka_unit_test(test_icmp),
		cmocka_unit_test(test_truncated_l4),
		cmocka_unit_test(test_record_chain_to_udp_icmp),
		cmocka_unit_test(test_packet_events),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
