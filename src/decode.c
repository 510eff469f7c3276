// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Decoding of the L3/L4 header bytes carried by a ring-buffer record. */
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "decode.h"
#include "pktrace.h"

/* As IPV6_EXT_MAX in pktrace.bpf.c, so both sides give up on the same packets. */
#define DECODE_IPV6_EXT_MAX 8

#define IPV4_HDR_MIN 20
#define IPV6_HDR_LEN 40
#define IPV6_FRAG_HDR_LEN 8
#define TCP_HDR_MIN 20

/* A read past len yields 0 and sets overrun: a missed length check is an error, not an OOB read. */
struct reader {
	const uint8_t *buf;
	size_t len;
	bool overrun;
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

/* On success *l4_off is where the TCP header starts. */
static int decode_ipv4(struct reader *r, struct pkt_headers *out, size_t *l4_off)
{
	uint8_t ihl = rd_u8(r, 0) & 0x0f;
	size_t hdr_len = (size_t)ihl * 4;

	if (hdr_len < IPV4_HDR_MIN)
		return -DECODE_BAD_IHL;
	/* Options are not decoded, but a header cut inside them is still a truncated header. */
	if (!rd_has(r, 0, hdr_len))
		return -DECODE_TRUNCATED_IP;
	/* Only the first fragment carries the TCP header; later ones start mid-segment. */
	if (rd_be16(r, 6) & 0x1fff)
		return -DECODE_FRAGMENT;
	if (rd_u8(r, 9) != IPPROTO_TCP)
		return -DECODE_NOT_TCP;

	out->family = AF_INET;
	rd_copy(r, 12, out->src_addr, 4);
	rd_copy(r, 16, out->dst_addr, 4);
	if (r->overrun)
		return -DECODE_TRUNCATED_IP;
	*l4_off = hdr_len;
	return DECODE_OK;
}

static int decode_ipv6(struct reader *r, struct pkt_headers *out, size_t *l4_off)
{
	size_t off = IPV6_HDR_LEN;
	size_t hdr_len;
	uint8_t next;
	int n;

	if (!rd_has(r, 0, IPV6_HDR_LEN))
		return -DECODE_TRUNCATED_IP;
	next = rd_u8(r, 6);

	for (n = 0; n < DECODE_IPV6_EXT_MAX && next != IPPROTO_TCP; n++) {
		/* Every extension header starts with next-header and a length byte. */
		if (!rd_has(r, off, 2))
			return -DECODE_TRUNCATED_IP;
		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			hdr_len = ((size_t)rd_u8(r, off + 1) + 1) * 8;
			break;
		case IPPROTO_AH:
			/* RFC 4302 counts AH in 32-bit words minus 2, unlike the others. */
			hdr_len = ((size_t)rd_u8(r, off + 1) + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			hdr_len = IPV6_FRAG_HDR_LEN;
			if (!rd_has(r, off, hdr_len))
				return -DECODE_TRUNCATED_IP;
			/* Offset is the top 13 bits; a first fragment holds the TCP header. */
			if (rd_be16(r, off + 2) >> 3)
				return -DECODE_FRAGMENT;
			break;
		default:
			/* UDP, ICMPv6, ESP, no-next-header: nothing here we can decode as TCP. */
			return -DECODE_NOT_TCP;
		}
		/* A header cut short must not make the TCP header look truncated instead. */
		if (!rd_has(r, off, hdr_len))
			return -DECODE_TRUNCATED_IP;
		next = rd_u8(r, off);
		off += hdr_len;
	}
	/* Giving up on an over-long chain: the TCP header, if any, is beyond what we walk. */
	if (next != IPPROTO_TCP)
		return -DECODE_NOT_TCP;

	out->family = AF_INET6;
	rd_copy(r, 8, out->src_addr, 16);
	rd_copy(r, 24, out->dst_addr, 16);
	if (r->overrun)
		return -DECODE_TRUNCATED_IP;
	*l4_off = off;
	return DECODE_OK;
}

static int decode_tcp(struct reader *r, size_t off, struct pkt_headers *out)
{
	uint8_t doff_byte;

	if (!rd_has(r, off, TCP_HDR_MIN))
		return -DECODE_TRUNCATED_TCP;
	doff_byte = rd_u8(r, off + 12);
	if ((doff_byte >> 4) < 5)
		return -DECODE_BAD_DATA_OFFSET;
	/* Options are not decoded, but a header cut inside them is still a truncated header. */
	if (!rd_has(r, off, (size_t)(doff_byte >> 4) * 4))
		return -DECODE_TRUNCATED_TCP;

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
	if (r->overrun)
		return -DECODE_TRUNCATED_TCP;
	return DECODE_OK;
}

int decode_headers(const uint8_t *buf, size_t len, struct pkt_headers *out)
{
	struct reader r = { .buf = buf, .len = len, .overrun = false };
	size_t l4_off = 0;
	int err;

	/* Zeroed so that the unused tail of a v4 address reads as zero. */
	memset(out, 0, sizeof(*out));
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
		return err;
	return decode_tcp(&r, l4_off, out);
}

static const char *const decode_errors[DECODE__MAX] = {
	[DECODE_OK] = "no error",
	[DECODE_TRUNCATED_IP] = "truncated IP header",
	[DECODE_BAD_IP_VERSION] = "bad IP version",
	[DECODE_BAD_IHL] = "bad IPv4 header length",
	[DECODE_NOT_TCP] = "not TCP",
	[DECODE_FRAGMENT] = "non-first fragment",
	[DECODE_TRUNCATED_TCP] = "truncated TCP header",
	[DECODE_BAD_DATA_OFFSET] = "bad TCP data offset",
	[DECODE_BAD_RECORD] = "malformed ring-buffer record",
};

const char *decode_strerror(int err)
{
	/* Callers pass decode_headers()'s negative return; accept either sign, INT_MIN too. */
	unsigned int e = err < 0 ? 0u - (unsigned int)err : (unsigned int)err;

	if (e < DECODE__MAX && decode_errors[e])
		return decode_errors[e];
	return "unknown decode error";
}

int decode_record(const void *data, size_t size, uint64_t boot_to_real_ns, struct pkt_event *e,
		  uint32_t *ifindex, uint32_t *uts_inum)
{
	const struct pkt_record *r = data;
	int err;

	if (!data || size < offsetof(struct pkt_record, hdr) ||
	    r->hdr_len > size - offsetof(struct pkt_record, hdr) || r->hdr_len > PKT_HDR_MAX ||
	    r->kind != PKT_REC_PACKET)
		return -DECODE_BAD_RECORD;
	err = decode_headers(r->hdr, r->hdr_len, &e->hdr);
	if (err)
		return err;
	e->timestamp_ns = r->ts_ns + boot_to_real_ns;
	e->egress = r->direction == PKT_EGRESS;
	e->packet_len = r->pkt_len;
	memcpy(e->ifname, r->ifname, PKT_IFNAME_LEN);
	e->ifname[PKT_IFNAME_LEN] = '\0';
	decode_owner(&r->owner, e, uts_inum);
	*ifindex = r->ifindex;
	return 0;
}

void decode_owner(const struct pkt_owner *o, struct pkt_event *e, uint32_t *uts_inum)
{
	e->proc.pid = o->pid;
	e->proc.tid = o->tid;
	e->proc.ppid = o->ppid;
	e->proc.uid = o->uid;
	e->proc.cgroup_id = o->cgroup_id;
	memcpy(e->proc.comm, o->comm, PKT_COMM_LEN);
	e->proc.comm[PKT_COMM_LEN] = '\0';
	*uts_inum = o->uts_inum;
}
