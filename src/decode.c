// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Decoding of the L3/L4 header bytes carried by a ring-buffer record. */
#include <assert.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "decode.h"
#include "events.h"
#include "pktrace.h"

#define IPV4_HDR_MIN 20
#define IPV6_HDR_LEN 40
#define IPV6_FRAG_HDR_LEN 8
#define TCP_HDR_MIN 20


/* A read past len yields 0 and sets overrun: a missed length check is an error, not an OOB read. */
struct reader {
	const uint8_t *buf;
	size_t len;
	bool overrun;
	bool cut_ok; /* a capture's snapshot length may end the TCP header in its options */
};

/* Written as a subtraction so that off + n cannot wrap. */
static inline bool rd_has(const struct reader *r, size_t off, size_t n)
{
	return off <= r->len && n <= r->len - off;
}

static inline uint8_t rd_u8(struct reader *r, size_t off)
{
	if (!rd_has(r, off, 1)) {
		r->overrun = true;
		return 0;
	}
	return r->buf[off];
}

static inline uint16_t rd_be16(struct reader *r, size_t off)
{
	if (!rd_has(r, off, 2)) {
		r->overrun = true;
		return 0;
	}
	return (uint16_t)(r->buf[off] << 8 | r->buf[off + 1]);
}

static inline uint32_t rd_be32(struct reader *r, size_t off)
{
	if (!rd_has(r, off, 4)) {
		r->overrun = true;
		return 0;
	}
	return (uint32_t)r->buf[off] << 24 | (uint32_t)r->buf[off + 1] << 16 |
	       (uint32_t)r->buf[off + 2] << 8 | (uint32_t)r->buf[off + 3];
}

static inline void rd_copy(struct reader *r, size_t off, void *dst, size_t n)
{
	if (!rd_has(r, off, n)) {
		r->overrun = true;
		memset(dst, 0, n);
		return;
	}
	memcpy(dst, r->buf + off, n);
}

static_assert(EVENT_EXT_TYPES == PKT_EXT_TYPES, "an event lists what a record lists");
static_assert(sizeof(struct pkt_wire) - offsetof(struct pkt_wire, hdr) ==
		      sizeof(struct pkt_record) - offsetof(struct pkt_record, hdr),
	      "a wire record and a record end alike from hdr[] on");
static_assert(offsetof(struct pkt_wire, snap_len) - offsetof(struct pkt_wire, hdr) ==
		      offsetof(struct pkt_record, snap_len) - offsetof(struct pkt_record, hdr),
	      "snap_len at the same place after hdr[]");
static_assert(offsetof(struct pkt_wire, kind) == offsetof(struct pkt_record, kind) &&
		      offsetof(struct pkt_owner_def, kind) == offsetof(struct pkt_record, kind),
	      "every record's kind at one offset");

/* One more extension header in the chain summary: the count saturates, the list stops. */
static void chain_add(struct pkt_headers *out, uint8_t type, size_t len)
{
	if (out->ext_types_n < EVENT_EXT_TYPES)
		out->ext_types[out->ext_types_n++] = type;
	if (out->ext_count < EVENT_EXT_COUNT_MAX)
		out->ext_count++;
	out->ext_len = len > UINT32_MAX - out->ext_len ? UINT32_MAX : out->ext_len + (uint32_t)len;
}

/*
 * The IPv4 header: its fields into *out. Negative: no event. 0: the transport header starts at
 * *l4_off. Positive: an event without transport fields, for that enum decode_error.
 */
static int decode_ipv4(struct reader *r, struct pkt_headers *out, size_t *l4_off)
{
	uint8_t ihl = rd_u8(r, 0) & 0x0f;
	size_t hdr_len = (size_t)ihl * 4;
	uint16_t frag;

	if (hdr_len < IPV4_HDR_MIN)
		return -DECODE_BAD_IHL;
	/* Options are not decoded, but a header cut inside them is still a truncated header. */
	if (!rd_has(r, 0, hdr_len))
		return -DECODE_TRUNCATED_IP;
	out->family = AF_INET;
	out->ip_version = 4;
	out->ihl = ihl;
	out->tos = rd_u8(r, 1);
	out->ip_len = rd_be16(r, 2);
	out->ip_id = rd_be16(r, 4);
	frag = rd_be16(r, 6);
	out->ip_flags = (uint8_t)(frag >> 13);
	out->frag_off = frag & 0x1fff;
	out->ttl = rd_u8(r, 8);
	out->ip_checksum = rd_be16(r, 10);
	rd_copy(r, 12, out->src_addr, 4);
	rd_copy(r, 16, out->dst_addr, 4);
	out->protocol = out->next_header = rd_u8(r, 9);
	if (r->overrun)
		return -DECODE_TRUNCATED_IP;
	/* Only the first fragment carries the transport header; later ones start mid-segment. */
	if (out->frag_off)
		return DECODE_FRAGMENT;
	*l4_off = hdr_len;
	return DECODE_OK;
}

/* The extension headers Linux steps over on the way to TCP (ipv6_ext_hdr() less NONE). */
static bool ipv6_is_ext(uint8_t next)
{
	return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_FRAGMENT ||
	       next == IPPROTO_DSTOPTS || next == IPPROTO_AH;
}

static int decode_ipv6_fixed(struct reader *r, struct pkt_headers *out)
{
	if (!rd_has(r, 0, IPV6_HDR_LEN))
		return -DECODE_TRUNCATED_IP;
	out->family = AF_INET6;
	out->ip_version = 6;
	out->tos = (uint8_t)(rd_be16(r, 0) >> 4);
	out->flow_label = rd_be32(r, 0) & 0xfffff;
	out->ip_len = rd_be16(r, 4);
	out->next_header = rd_u8(r, 6);
	out->ttl = rd_u8(r, 7);
	rd_copy(r, 8, out->src_addr, 16);
	rd_copy(r, 24, out->dst_addr, 16);
	return r->overrun ? -DECODE_TRUNCATED_IP : DECODE_OK;
}

/* A whole IPv6 packet: the chain is walked to its end, however long; returns as decode_ipv4. */
static int decode_ipv6(struct reader *r, struct pkt_headers *out, size_t *l4_off)
{
	size_t off = IPV6_HDR_LEN;
	size_t hdr_len;
	uint8_t next, type;
	int err;

	err = decode_ipv6_fixed(r, out);
	if (err)
		return err;
	next = rd_u8(r, 6);
	/* Each header is at least 8 bytes and must lie within len: the walk ends with the buffer. */
	while (ipv6_is_ext(next)) {
		/* Cut inside the chain: the rest of it, and the protocol, are unknown. */
		out->protocol = IPPROTO_RAW;
		if (!rd_has(r, off, 2))
			return DECODE_TRUNCATED_IP;
		if (next == IPPROTO_AH)
			/* RFC 4302 counts AH in 32-bit words minus 2, unlike the others. */
			hdr_len = ((size_t)rd_u8(r, off + 1) + 2) * 4;
		else if (next == IPPROTO_FRAGMENT)
			hdr_len = IPV6_FRAG_HDR_LEN;
		else
			hdr_len = ((size_t)rd_u8(r, off + 1) + 1) * 8;
		if (!rd_has(r, off, hdr_len))
			return DECODE_TRUNCATED_IP;
		type = next;
		next = rd_u8(r, off);
		chain_add(out, type, hdr_len);
		/* Offset is the top 13 bits; a first fragment holds the TCP header. */
		if (type == IPPROTO_FRAGMENT && rd_be16(r, off + 2) >> 3) {
			out->protocol = next;
			return DECODE_FRAGMENT;
		}
		off += hdr_len;
	}
	out->protocol = next;
	*l4_off = off;
	return DECODE_OK;
}

/* The experimental TFO option (RFC 7413 section 4.1.3): kind 254, then this magic. */
#define TCP_EXP_TFO_MAGIC 0xf989

/* Fixed option lengths (RFC 9293, 7323, 2018); 0: any length the kind's own check accepts. */
static const uint8_t tcp_opt_len[256] = {
	[TCP_KIND_MSS] = 4, [TCP_KIND_WSCALE] = 3, [TCP_KIND_SACK_PERM] = 2, [TCP_KIND_TS] = 10,
};

/*
 * The options in r[off..end): end is within r (decode_tcp checked the whole header). A length
 * below 2 or past end stops the walk; a known kind with a length wrong for it, or one seen
 * before, is skipped; both set o->malformed and are never used.
 */
static void decode_tcp_opts(struct reader *r, size_t off, size_t end, size_t limit,
			    struct tcp_opts *o)
{
	uint8_t kind, len;
	size_t i;

	/* What Linux puts in every segment of an established connection, NOP NOP timestamps
	 * (RFC 7323's appendix A layout), taken in one read: the walk below gives the same. */
	if (end - off == 12 && end == limit && o->order_n == 0 && rd_be32(r, off) == 0x0101080a) {
		o->order[0] = TCP_KIND_NOP;
		o->order[1] = TCP_KIND_NOP;
		o->order[2] = TCP_KIND_TS;
		o->order_n = 3;
		o->ts_val = rd_be32(r, off + 4);
		o->ts_ecr = rd_be32(r, off + 8);
		o->present |= TCP_OPT_TS;
		return;
	}
	/* Each step takes a byte at least, so order[] (40) and unknown[] (20) cannot fill up. */
	while (off < end && o->order_n < TCP_OPTS_MAX_LEN) {
		kind = rd_u8(r, off);
		if (kind == TCP_KIND_EOL || kind == TCP_KIND_NOP) {
			o->order[o->order_n++] = kind;
			if (kind == TCP_KIND_EOL) {
				o->present |= TCP_OPT_EOL;
				return;
			}
			off++;
			continue;
		}
		if (end - off < 2) {
			/* Cut before the length byte: where the capture ends, else malformed. */
			if (end < limit && limit - off >= 2)
				o->cut = TCP_CUT_AT_OPTION;
			else
				o->malformed = true;
			return;
		}
		len = rd_u8(r, off + 1);
		if (len >= 2 && len > end - off && len <= limit - off) {
			o->cut = TCP_CUT_IN_OPTION;
			o->cut_kind = kind;
			return;
		}
		if (len < 2 || len > end - off) {
			o->malformed = true;
			return;
		}
		if (r->overrun)
			return;
		if (tcp_opt_len[kind] && len != tcp_opt_len[kind])
			goto bad;
		switch (kind) {
		case TCP_KIND_MSS:
			if (o->present & TCP_OPT_MSS)
				goto bad;
			o->mss = rd_be16(r, off + 2);
			o->present |= TCP_OPT_MSS;
			break;
		case TCP_KIND_WSCALE:
			if (o->present & TCP_OPT_WSCALE)
				goto bad;
			o->wscale = rd_u8(r, off + 2);
			o->present |= TCP_OPT_WSCALE;
			break;
		case TCP_KIND_SACK_PERM:
			if (o->present & TCP_OPT_SACK_PERM)
				goto bad;
			o->present |= TCP_OPT_SACK_PERM;
			break;
		case TCP_KIND_SACK:
			/* 1 to 4 blocks of two edges; 40 bytes of options cannot hold a fifth. */
			if ((o->present & TCP_OPT_SACK) || (len - 2) % 8 || len == 2 ||
			    (len - 2) / 8 > TCP_OPTS_SACK_MAX)
				goto bad;
			o->sack_n = (uint8_t)((len - 2) / 8);
			for (i = 0; i < o->sack_n; i++) {
				o->sack[i][0] = rd_be32(r, off + 2 + i * 8);
				o->sack[i][1] = rd_be32(r, off + 6 + i * 8);
			}
			o->present |= TCP_OPT_SACK;
			break;
		case TCP_KIND_TS:
			if (o->present & TCP_OPT_TS)
				goto bad;
			o->ts_val = rd_be32(r, off + 2);
			o->ts_ecr = rd_be32(r, off + 6);
			o->present |= TCP_OPT_TS;
			break;
		case TCP_KIND_EXP:
			if (len < 4 || rd_be16(r, off + 2) != TCP_EXP_TFO_MAGIC)
				goto unknown;
			if (o->present & TCP_OPT_TFO)
				goto bad;
			o->tfo_len = (uint8_t)(len - 4);
			rd_copy(r, off + 4, o->tfo_cookie, o->tfo_len);
			o->present |= TCP_OPT_TFO;
			o->tfo_exp = true;
			/* Listed as TFO: in order[], 254 is only ever an unknown option. */
			kind = TCP_KIND_TFO;
			break;
		case TCP_KIND_TFO:
			if (o->present & TCP_OPT_TFO)
				goto bad;
			o->tfo_len = (uint8_t)(len - 2);
			rd_copy(r, off + 2, o->tfo_cookie, o->tfo_len);
			o->present |= TCP_OPT_TFO;
			break;
		default:
unknown:
			if (o->unknown_n >= TCP_OPTS_UNKNOWN_MAX)
				goto bad;
			o->unknown[o->unknown_n].kind = kind;
			o->unknown[o->unknown_n].len = len;
			/* its data after the previous ones': all the options fit in 40 bytes */
			o->unknown[o->unknown_n].data = o->unknown_used;
			rd_copy(r, off + 2, o->unknown_data + o->unknown_used, len - 2);
			o->unknown_used += len - 2;
			o->unknown_n++;
			break;
		}
		o->order[o->order_n++] = kind;
		off += len;
		continue;
bad:
		o->malformed = true;
		off += len;
	}
	if (off == end && end < limit)
		o->cut = TCP_CUT_AT_OPTION;
}

/* The TCP fields are written only once the whole header is known to be there. */
static int decode_tcp(struct reader *r, size_t off, struct pkt_headers *out)
{
	size_t end, limit;
	uint8_t doff_byte;

	if (!rd_has(r, off, TCP_HDR_MIN))
		return DECODE_TRUNCATED_TCP;
	doff_byte = rd_u8(r, off + 12);
	if ((doff_byte >> 4) < 5) {
		/* The 20 bytes are there: the ports are known (tcpdump shows them too). */
		out->src_port = rd_be16(r, off);
		out->dst_port = rd_be16(r, off + 2);
		out->data_offset = doff_byte >> 4;
		return DECODE_BAD_DATA_OFFSET;
	}
	limit = off + (size_t)(doff_byte >> 4) * 4;
	end = limit;
	/* A header cut inside its options is a truncated header, but where a capture's snapshot
	 * length cut it (-r): the fixed header and the options before the cut, as tcpdump. */
	if (!rd_has(r, off, limit - off)) {
		if (!r->cut_ok)
			return DECODE_TRUNCATED_TCP;
		end = r->len;
	}

	out->protocol = IPPROTO_TCP;
	out->src_port = rd_be16(r, off);
	out->dst_port = rd_be16(r, off + 2);
	out->seq = rd_be32(r, off + 4);
	out->ack = rd_be32(r, off + 8);
	out->data_offset = doff_byte >> 4;
	/* NS (RFC 3540, AE in AccECN) lives in the low bit of the data-offset byte. */
	out->flags = (uint16_t)(rd_u8(r, off + 13) | (doff_byte & 0x01) << 8);
	out->window = rd_be16(r, off + 14);
	out->checksum = rd_be16(r, off + 16);
	out->urgent = rd_be16(r, off + 18);
	decode_tcp_opts(r, off + TCP_HDR_MIN, end, limit, &out->opts);
	if ((out->opts.malformed || out->opts.unknown_n) && !out->opts.cut) {
		/* end - off - 20 <= 40: the data offset's 4 bits */
		out->opts.raw_len = (uint8_t)(end - off - TCP_HDR_MIN);
		rd_copy(r, off + TCP_HDR_MIN, out->opts.raw, out->opts.raw_len);
	}
	return DECODE_OK;
}

/* Transport headers other than TCP: UDP's 8 bytes, ICMP's and ICMPv6's first 8 (4 at least). */
#define UDP_HDR_LEN 8
#define ICMP_HDR_MIN 4
#define ICMP_HDR_LEN 8

static int decode_udp(struct reader *r, size_t off, struct pkt_headers *out)
{
	if (!rd_has(r, off, UDP_HDR_LEN))
		return DECODE_TRUNCATED_L4;
	out->src_port = rd_be16(r, off);
	out->dst_port = rd_be16(r, off + 2);
	out->udp_len = rd_be16(r, off + 4);
	out->checksum = rd_be16(r, off + 6);
	return DECODE_OK;
}

/* ICMP and ICMPv6 share the first four bytes; id and seq are the next four when present. */
static int decode_icmp(struct reader *r, size_t off, struct pkt_headers *out)
{
	if (!rd_has(r, off, ICMP_HDR_MIN))
		return DECODE_TRUNCATED_L4;
	out->icmp_type = rd_u8(r, off);
	out->icmp_code = rd_u8(r, off + 1);
	out->checksum = rd_be16(r, off + 2);
	if (rd_has(r, off, ICMP_HDR_LEN)) {
		out->icmp_id = rd_be16(r, off + 4);
		out->icmp_seq = rd_be16(r, off + 6);
	}
	return DECODE_OK;
}

/* The transport header at off, by out->protocol; protocols pktrace does not decode have no
 * fields and no error (their packets are IP events only). */
static int decode_l4(struct reader *r, size_t off, struct pkt_headers *out)
{
	switch (out->protocol) {
	case IPPROTO_TCP:
		return decode_tcp(r, off, out);
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		return decode_udp(r, off, out);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return decode_icmp(r, off, out);
	default:
		return DECODE_OK;
	}
}

/* err from an IP or TCP step: negative ends decoding, positive makes the event partial. */
static int finish(struct pkt_headers *out, int err)
{
	if (err < 0)
		return err;
	out->l4_error = (uint8_t)err;
	return DECODE_OK;
}

typedef unsigned char clear16 __attribute__((vector_size(16), may_alias, aligned(1)));

/* The whole struct zeroed by 16-byte stores: a memset of this size is a `rep stos` with gcc,
 * slow to start on x86, and it was 3-4 % of the reader's CPU time (bench/changes.md). */
static inline void headers_clear(struct pkt_headers *out)
{
	size_t i;

#pragma GCC unroll 32
	for (i = 0; i < sizeof(*out) / 16; i++)
		((clear16 *)out)[i] = (clear16){ 0 };
	memset((unsigned char *)out + sizeof(*out) / 16 * 16, 0, sizeof(*out) % 16);
}

static int decode_packet(const uint8_t *buf, size_t len, bool cut_ok, struct pkt_headers *out)
{
	struct reader r = { .buf = buf, .len = len, .overrun = false, .cut_ok = cut_ok };
	size_t l4_off = 0;
	int err;

	/* Zeroed so that the unused tail of a v4 address, and a partial event's TCP fields, are 0. */
	headers_clear(out);
	if (!rd_has(&r, 0, 1))
		return -DECODE_TRUNCATED_IP;

	switch (rd_u8(&r, 0) >> 4) {
	case 4:
		err = decode_ipv4(&r, out, &l4_off);
		break;
	case 6:
		err = decode_ipv6(&r, out, &l4_off);
		break;
	default:
		return -DECODE_BAD_IP_VERSION;
	}
	if (err)
		return finish(out, err);
	return finish(out, decode_l4(&r, l4_off, out));
}

int decode_headers(const uint8_t *buf, size_t len, struct pkt_headers *out)
{
	return decode_packet(buf, len, false, out);
}

int decode_headers_snap(const uint8_t *buf, size_t len, struct pkt_headers *out)
{
	return decode_packet(buf, len, true, out);
}

/*
 * A record's IPv6 headers: the fixed header, then the TCP header (unless PKT_F_NO_L4), then
 * min(ext_count, PKT_EXT_TYPES) type bytes. The chain itself is not in hdr[].
 */
static int decode_record_ipv6(struct reader *r, const struct pkt_record *rec,
			      struct pkt_headers *out)
{
	size_t n_types = rec->ext_count < PKT_EXT_TYPES ? rec->ext_count : PKT_EXT_TYPES;
	size_t types_off = IPV6_HDR_LEN;
	uint8_t first;
	int err;

	err = decode_ipv6_fixed(r, out);
	if (err)
		return err;
	first = rd_u8(r, 6);
	/* A length needs a chain; a chain has a length, but one that ends short of TCP may not say. */
	if (rec->ext_count == 0 ? rec->ext_len != 0
				: rec->ext_len == 0 && !(rec->flags & PKT_F_NO_L4))
		return -DECODE_BAD_RECORD;
	out->ext_count = rec->ext_count;
	out->ext_len = rec->ext_len;
	if (rec->flags & PKT_F_NO_L4) {
		/* What follows a chain the kernel could not walk to its end is unknown. */
		out->protocol = rec->ext_count ? IPPROTO_RAW : first;
		err = DECODE_NO_L4;
	} else {
		/* The chain is not in the record: the kernel says where it led. */
		struct reader l4r = *r;

		out->protocol = rec->ext_count ? rec->l4_proto : first;
		if (rec->ext_count && ipv6_is_ext(out->protocol))
			return -DECODE_BAD_RECORD;
		if (out->protocol == IPPROTO_TCP) {
			err = decode_tcp(r, IPV6_HDR_LEN, out);
			/* Cut inside the TCP header: where the types start is unknown, so none are
			 * listed. */
			if (err)
				return err;
			types_off += (size_t)out->data_offset * 4;
		} else {
			/*
			 * The kernel copies UDP's and ICMP's 8 bytes, fewer from a short packet, none
			 * of other protocols: the transport bytes are those before the types (a 4-byte
			 * ICMP header must not take type bytes for its id and sequence).
			 */
			if (!rd_has(r, IPV6_HDR_LEN, n_types))
				return -DECODE_BAD_RECORD;
			l4r.len = r->len - n_types;
			err = decode_l4(&l4r, IPV6_HDR_LEN, out);
			types_off = l4r.len;
		}
	}
	/* The count says the types are there: a record without room for them is malformed. */
	if (!rd_has(r, types_off, n_types))
		return -DECODE_BAD_RECORD;
	rd_copy(r, types_off, out->ext_types, n_types);
	out->ext_types_n = (uint8_t)n_types;
	/* The fixed header names the first extension header: a misplaced list does not. */
	if (n_types && out->ext_types[0] != first)
		return -DECODE_BAD_RECORD;
	return err;
}

int decode_record_snap_len(const struct pkt_record *r, size_t size)
{
	const size_t at = offsetof(struct pkt_record, snap);

	if (size <= offsetof(struct pkt_record, hdr) + PKT_HDR_MAX)
		return 0;
	if (size < at || size > sizeof(*r) || r->snap_len > size - at)
		return -DECODE_BAD_RECORD;
	return r->snap_len;
}

int decode_record_headers(const struct pkt_record *r, size_t size, struct pkt_headers *out)
{
	struct reader rd;
	size_t l4_off = 0;
	int err;

	if (!r || size < offsetof(struct pkt_record, hdr) ||
	    r->hdr_len > size - offsetof(struct pkt_record, hdr) || r->hdr_len > PKT_HDR_MAX ||
	    r->kind != PKT_REC_PACKET || decode_record_snap_len(r, size) < 0)
		return -DECODE_BAD_RECORD;
	headers_clear(out);
	rd = (struct reader){ .buf = r->hdr, .len = r->hdr_len, .overrun = false };
	if (!rd_has(&rd, 0, 1))
		return -DECODE_TRUNCATED_IP;

	switch (rd_u8(&rd, 0) >> 4) {
	case 4:
		if (r->ext_count || r->ext_len)
			return -DECODE_BAD_RECORD;
		err = decode_ipv4(&rd, out, &l4_off);
		if (err < 0)
			return err;
		if (r->flags & PKT_F_NO_L4)
			return finish(out, err ? err : DECODE_NO_L4);
		if (!err)
			err = decode_l4(&rd, l4_off, out);
		return finish(out, err);
	case 6:
		err = decode_record_ipv6(&rd, r, out);
		/* A partial IPv6 record still has its chain summary: l4_error alone marks it. */
		return finish(out, err);
	default:
		return -DECODE_BAD_IP_VERSION;
	}
}

static const char *const decode_errors[DECODE__MAX] = {
	[DECODE_OK] = "no error",
	[DECODE_TRUNCATED_IP] = "truncated IP header",
	[DECODE_BAD_IP_VERSION] = "bad IP version",
	[DECODE_BAD_IHL] = "bad IPv4 header length",
	[DECODE_FRAGMENT] = "non-first fragment",
	[DECODE_TRUNCATED_TCP] = "truncated TCP header",
	[DECODE_BAD_DATA_OFFSET] = "bad TCP data offset",
	[DECODE_BAD_RECORD] = "malformed ring-buffer record",
	[DECODE_NO_L4] = "no transport header",
	[DECODE_TRUNCATED_L4] = "truncated transport header",
	[DECODE_NO_OWNER] = "owner definition missing",
};

const char *decode_strerror(int err)
{
	/* Callers pass decode_headers()'s negative return; accept either sign, INT_MIN too. */
	unsigned int e = err < 0 ? 0u - (unsigned int)err : (unsigned int)err;

	if (e < DECODE__MAX && decode_errors[e])
		return decode_errors[e];
	return "unknown decode error";
}

size_t decode_wire_len(size_t size)
{
	if (size < offsetof(struct pkt_wire, hdr))
		return 0;
	/* The same layout from hdr[] on in both (snap_len and snap[] included). */
	return offsetof(struct pkt_record, hdr) + size - offsetof(struct pkt_wire, hdr);
}

long decode_wire(const void *data, size_t size, const struct pkt_owner *owner,
		 const char *ifname, struct pkt_record *out, size_t room)
{
	const struct pkt_wire *w = data;
	size_t len = decode_wire_len(size);

	if (!len || size > sizeof(*w) || w->kind != PKT_REC_PACKET)
		return -DECODE_BAD_RECORD;
	if (len > room || len > sizeof(*out))
		return -DECODE_BAD_RECORD;
	out->ts_ns = w->ts_ns;
	out->kind = w->kind;
	out->flags = w->flags;
	out->hdr_len = w->hdr_len;
	out->pkt_len = w->pkt_len;
	if (owner)
		out->owner = *owner;
	else
		memset(&out->owner, 0, sizeof(out->owner));
	out->ifindex = w->ifindex;
	out->netns = w->netns;
	out->direction = w->direction;
	out->l3_proto = w->l3_proto;
	out->ext_len = w->ext_len;
	out->ext_count = w->ext_count;
	out->sk_proto = w->sk_proto;
	out->l4_proto = w->l4_proto;
	out->pad2 = 0;
	memset(out->ifname, 0, sizeof(out->ifname));
	if (ifname)
		memcpy(out->ifname, ifname, PKT_IFNAME_LEN);
	/* hdr[] and, with --snaplen, snap_len and snap[]. */
	memcpy(out->hdr, w->hdr, len - offsetof(struct pkt_record, hdr));
	return (long)len;
}

int decode_record(const void *data, size_t size, uint64_t boot_to_real_ns, struct pkt_event *e,
		  uint32_t *ifindex, uint64_t *uts_key)
{
	const struct pkt_record *r = data;
	int err;

	err = decode_record_headers(r, size, &e->hdr);
	if (err)
		return err;
	e->event = EVENT_NET_PACKET_TCP;
	e->sk_proto = r->sk_proto;
	e->timestamp_ns = r->ts_ns + boot_to_real_ns;
	e->egress = r->direction == PKT_EGRESS;
	e->packet_len = r->pkt_len;
	memcpy(e->ifname, r->ifname, PKT_IFNAME_LEN);
	e->ifname[PKT_IFNAME_LEN] = '\0';
	decode_owner(&r->owner, e, uts_key);
	*ifindex = r->ifindex;
	return 0;
}

int decode_flow_record(const void *data, size_t size, uint64_t boot_to_real_ns,
		       struct pkt_event *e, uint64_t *uts_key)
{
	const struct pkt_record *r = data;
	struct pkt_flow_event *f = &e->flow;
	struct pkt_flow k;
	const uint8_t *local, *remote;
	uint16_t lport, rport;
	size_t alen;

	if (size < offsetof(struct pkt_record, hdr) || size > sizeof(*r) ||
	    r->kind != PKT_REC_FLOW || r->hdr_len != sizeof(k) ||
	    size < offsetof(struct pkt_record, hdr) + sizeof(k))
		return -DECODE_BAD_RECORD;
	memcpy(&k, r->hdr, sizeof(k));
	if ((k.conn.family != 4 && k.conn.family != 6) || k.close_reason > PKT_CLOSE_TIMEOUT ||
	    k.closed_first > PKT_CLOSER_REMOTE)
		return -DECODE_BAD_RECORD;
	memset(f, 0, sizeof(*f));
	e->event = r->flags & PKT_FLOW_END ? EVENT_NET_FLOW_TCP_END : EVENT_NET_FLOW_TCP_BEGIN;
	e->timestamp_ns = r->ts_ns + boot_to_real_ns;
	e->egress = false;
	e->packet_len = 0;
	e->ifname[0] = '\0';
	f->end = r->flags & PKT_FLOW_END;
	f->outgoing = !(r->flags & PKT_FLOW_PASSIVE);
	f->begin_seen = f->end && (r->flags & PKT_FLOW_BEGIN_SEEN);
	f->family = k.conn.family == 6 ? AF_INET6 : AF_INET;
	alen = k.conn.family == 6 ? 16 : 4;
	local = k.conn.laddr;
	remote = k.conn.raddr;
	lport = k.conn.lport;
	rport = k.conn.rport;
	/* src is the initiator: the local side of an outgoing connection. */
	memcpy(f->src_addr, f->outgoing ? local : remote, alen);
	memcpy(f->dst_addr, f->outgoing ? remote : local, alen);
	f->src_port = f->outgoing ? lport : rport;
	f->dst_port = f->outgoing ? rport : lport;
	if (f->end) {
		f->duration_ns = f->begin_seen ? k.duration_ns : 0;
		/* bytes_acked counts sequence space: the active side's SYN and an acked FIN too
		 * (acked whatever the close reason: a reset may follow it). */
		f->bytes_sent = k.bytes_acked;
		if (f->outgoing && f->bytes_sent)
			f->bytes_sent--;
		if ((r->flags & PKT_FLOW_FIN_ACKED) && f->bytes_sent)
			f->bytes_sent--;
		f->bytes_received = k.bytes_received;
		f->retrans_bytes = k.bytes_retrans;
		f->segs_sent = k.segs_out;
		f->segs_received = k.segs_in;
		f->data_segs_sent = k.data_segs_out;
		f->data_segs_received = k.data_segs_in;
		f->retrans_segs = k.total_retrans;
		f->srtt_us = k.srtt_us;
		f->min_rtt_us = k.min_rtt_us == ~0U ? 0 : k.min_rtt_us;
		f->delivered_ce = k.delivered_ce;
		f->close_reason = k.close_reason;
		f->closed_first = k.closed_first;
	}
	decode_owner(&r->owner, e, uts_key);
	return 0;
}

event_mask decode_packet_events(const struct pkt_event *e)
{
	const struct pkt_headers *h = &e->hdr;
	/* A packet whose transport header is missing is still an event of its socket's kind. */
	uint8_t p = h->l4_error && e->sk_proto != IPPROTO_RAW ? e->sk_proto : h->protocol;
	event_mask m = h->family == AF_INET6 ? EVENT_BIT(EVENT_NET_PACKET_IPV6)
					     : EVENT_BIT(EVENT_NET_PACKET_IPV4);

	switch (p) {
	case IPPROTO_TCP:
		m |= EVENT_BIT(EVENT_NET_PACKET_TCP);
		break;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		m |= EVENT_BIT(EVENT_NET_PACKET_UDP);
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* A ping socket is ICMP or ICMPv6 by its family, and so are its packets. */
		m |= h->family == AF_INET6 ? EVENT_BIT(EVENT_NET_PACKET_ICMPV6)
					   : EVENT_BIT(EVENT_NET_PACKET_ICMP);
		break;
	}
	return m;
}

const char *flow_close_reason_name(unsigned int reason)
{
	static const char *const names[] = {
		[FLOW_CLOSE_UNKNOWN] = "unknown",       [FLOW_CLOSE_FIN] = "fin",
		[FLOW_CLOSE_RST_SENT] = "rst_sent",     [FLOW_CLOSE_RST_RECEIVED] = "rst_received",
		[FLOW_CLOSE_ABORTED] = "aborted",       [FLOW_CLOSE_TIMEOUT] = "timeout",
	};

	return reason < sizeof(names) / sizeof(names[0]) ? names[reason] : "unknown";
}

const char *flow_closer_name(unsigned int closer)
{
	return closer == FLOW_CLOSER_LOCAL ? "local" : closer == FLOW_CLOSER_REMOTE ? "remote" : "";
}

void decode_owner(const struct pkt_owner *o, struct pkt_event *e, uint64_t *uts_key)
{
	e->proc.pid = o->pid;
	e->proc.tid = o->tid;
	e->proc.ppid = o->ppid;
	e->proc.uid = o->uid;
	e->proc.cgroup_id = o->cgroup_id;
	memcpy(e->proc.comm, o->comm, PKT_COMM_LEN);
	e->proc.comm[PKT_COMM_LEN] = '\0';
	*uts_key = o->uts_key;
}
