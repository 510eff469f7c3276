// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pcapng printer (-w): blocks built in the output buffer, no allocation. Written by hand since
 * libpcap 1.10 writes pcap only (pcap_dump_open has no pcapng form).
 */
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "output.h"
#include "output_fmt.h"
#include "decode.h"
#include "pcapng.h"
#include "pktrace.h"

#define PKTRACE_USERAPPL "pktrace 0.1.0"
/* Room a packet block needs besides its data and comment: header, flags, end, trailer. */
#define EPB_FIXED (28 + 8 + 4 + 4 + 4)

/* A little cursor: an append that does not fit sets ovf and takes the room away (end = p),
 * so every later one fails too. */
struct blk {
	char *p;
	char *end;
	int ovf;
};

/* Inlined: the cursor stays in registers and a copy of known length becomes plain stores. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE int room(struct blk *k, size_t n)
{
	if ((size_t)(k->end - k->p) >= n)
		return 1;
	k->ovf = 1;
	k->end = k->p;
	return 0;
}

static ALWAYS_INLINE void put(struct blk *k, const void *s, size_t n)
{
	if (!room(k, n))
		return;
	memcpy(k->p, s, n);
	k->p += n;
}

static void put32(struct blk *k, uint32_t v)
{
	put(k, &v, 4);
}

static void pad4(struct blk *k, size_t n)
{
	static const char zero[4];

	put(k, zero, (4 - (n & 3)) & 3);
}

/* An option: code, length, value padded to 4 bytes. */
static void put_opt(struct blk *k, uint16_t code, const void *v, size_t n)
{
	uint16_t h[2] = {code, (uint16_t)n};

	put(k, h, 4);
	put(k, v, n);
	pad4(k, n);
}

/* Close a block begun at start: its length in the header and the trailer. */
static size_t blk_end(struct blk *k, char *start)
{
	uint32_t len;

	put32(k, 0); /* opt_endofopt */
	len = (uint32_t)(k->p - start) + 4;
	put32(k, len);
	if (k->ovf)
		return 0;
	memcpy(start + 4, &len, 4);
	return len;
}

size_t format_pcapng_header(char *dst, size_t cap)
{
	struct blk k = {dst, dst + cap, 0};
	int64_t section_len = -1;
	uint16_t version[2] = {1, 0};

	put32(&k, PCAPNG_SHB);
	put32(&k, 0);
	put32(&k, PCAPNG_BOM);
	put(&k, version, 4);
	put(&k, &section_len, 8);
	put_opt(&k, PCAPNG_SHB_USERAPPL, PKTRACE_USERAPPL, sizeof(PKTRACE_USERAPPL) - 1);
	return blk_end(&k, dst);
}

static void put_idb(struct blk *k, const char *name, uint32_t netns, uint32_t host_netns)
{
	char *start = k->p, desc[64];
	uint16_t linktype[2] = {PCAPNG_LINKTYPE_RAW, 0};
	uint8_t tsresol = 9;
	int n;

	put32(k, PCAPNG_IDB);
	put32(k, 0);
	put(k, linktype, 4);
	put32(k, 0); /* snaplen: none */
	if (name[0])
		put_opt(k, PCAPNG_IF_NAME, name, strlen(name));
	if (netns && netns != host_netns) {
		n = snprintf(desc, sizeof(desc), PCAPNG_NETNS_PREFIX "%u", netns);
		put_opt(k, PCAPNG_IF_DESCRIPTION, desc, (size_t)n);
	}
	put_opt(k, PCAPNG_IF_TSRESOL, &tsresol, 1);
	blk_end(k, start);
}

/* The interface index of (name, netns), describing it first when new; the last one if full. */
static uint32_t iface_of(struct pcapng_ifaces *ifs, struct blk *k, const char *name, uint32_t netns)
{
	uint32_t i = ifs->last;

	if (i < ifs->n && ifs->ifs[i].netns == netns && same_str(ifs->ifs[i].name, name))
		return i;
	for (i = 0; i < ifs->n; i++)
		if (ifs->ifs[i].netns == netns && same_str(ifs->ifs[i].name, name))
			return i;
	if (ifs->n == PCAPNG_IFACES_MAX) {
		ifs->overflow++;
		return PCAPNG_IFACES_MAX - 1;
	}
	if (ifs->n == PCAPNG_IFACES_MAX - 1) {
		ifs->overflow++;
		put_idb(k, "other", 0, 0); /* every pair past the table's room */
		return ifs->n;
	}
	put_idb(k, name, netns, ifs->host_netns);
	return ifs->n;
}

/* Escape a value: printable ASCII but backslash as is, every other byte as \xHH. */
static ALWAYS_INLINE void put_escaped(struct blk *k, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	char esc[4] = {'\\', 'x'};

	for (; *u; u++) {
		if (*u >= 0x20 && *u < 0x7f && *u != '\\') {
			if (room(k, 1))
				*k->p++ = (char)*u;
		} else if (*u == '\\') {
			put(k, "\\\\", 2);
		} else {
			esc[2] = hex[*u >> 4];
			esc[3] = hex[*u & 0xf];
			put(k, esc, 4);
		}
	}
}

/* "key: v\n", the digits made in place (snprintf would be most of a packet's cost). */
static ALWAYS_INLINE void put_line_u64(struct blk *k, const char *key, size_t klen, uint64_t v)
{
	size_t n = dec_len(v);

	if (!room(k, klen + 2 + n + 1))
		return;
	memcpy(k->p, key, klen);
	k->p[klen] = ':';
	k->p[klen + 1] = ' ';
	k->p += klen + 2 + n;
	dec_put(k->p, v);
	*k->p++ = '\n';
}

#define PUT_U64(k, key, v) put_line_u64((k), key, sizeof(key) - 1, (v))

static ALWAYS_INLINE void put_line_str(struct blk *k, const char *key, size_t klen, const char *v)
{
	put(k, key, klen);
	put(k, ": ", 2);
	put_escaped(k, v);
	put(k, "\n", 1);
}

#define PUT_STR(k, key, v) put_line_str((k), key, sizeof(key) - 1, (v))

/* The comment's text: the process, the socket's class, the events. */
static ALWAYS_INLINE void put_comment_text(struct blk *k, const struct pkt_event *e,
					   uint64_t mask)
{
	const struct pkt_process *p = &e->proc;

	PUT_U64(k, PCAPNG_KEY_PID, p->pid);
	PUT_U64(k, PCAPNG_KEY_TID, p->tid);
	PUT_U64(k, PCAPNG_KEY_PPID, p->ppid);
	PUT_U64(k, PCAPNG_KEY_UID, p->uid);
	PUT_STR(k, PCAPNG_KEY_COMM, p->comm);
	PUT_STR(k, PCAPNG_KEY_CONTAINER, p->container_id ? p->container_id : "");
	PUT_STR(k, PCAPNG_KEY_HOST, p->hostname ? p->hostname : "");
	PUT_U64(k, PCAPNG_KEY_CGROUP, p->cgroup_id);
	PUT_U64(k, PCAPNG_KEY_SOCK, e->sk_proto);
	put(k, PCAPNG_KEY_EVENTS ": ", sizeof(PCAPNG_KEY_EVENTS ": ") - 1);
	for (int id = 0, first = 1; id < EVENT__COUNT; id++) {
		if (!(mask & EVENT_BIT(id)))
			continue;
		if (!first)
			put(k, ",", 1);
		put(k, events[id].name, strlen(events[id].name));
		first = 0;
	}
}

/* The comment option, its text kept per thread id (proc_text_get): the process's, the socket's
 * class and the events' text, all three in the key. */
static ALWAYS_INLINE void put_comment(struct blk *k, const struct pkt_event *e, uint64_t mask)
{
	static _Thread_local struct proc_text_cache cache;
	const struct pkt_process *p = &e->proc;
	char *start = k->p + 4;
	uint16_t h[2] = {PCAPNG_OPT_COMMENT, 0};
	uint64_t extra = mask << 8 | e->sk_proto;
	bool keep = p->container_id && p->hostname && mask < (1ULL << 56);
	const struct proc_text *t = keep ? proc_text_get(&cache, p, extra) : NULL;
	size_t n;

	put(k, h, 4);
	if (t) {
		put(k, t->text, t->len);
	} else {
		put_comment_text(k, e, mask);
		if (keep && !k->ovf)
			proc_text_put(&cache, p, extra, start, (size_t)(k->p - start));
	}
	if (k->ovf)
		return;
	/* No final newline: tshark shows the comment as it is. */
	n = (size_t)(k->p - start);
	if (n > 0xffff) {
		k->ovf = 1;
		return;
	}
	h[1] = (uint16_t)n;
	memcpy(start - 4, h, 4);
	pad4(k, n);
}

size_t format_pcapng_packet(char *dst, size_t cap, struct pcapng_ifaces *ifs,
			    const struct pkt_event *e, uint64_t mask, const struct pkt_bytes *b)
{
	struct blk k = {dst, dst + cap, 0};
	uint32_t iface, hdr[5], flags = e->egress ? PCAPNG_EPB_OUTBOUND : PCAPNG_EPB_INBOUND;
	uint32_t n_before = ifs->n;
	char *start;

	uint32_t cap_len = b->len + b->snap_len;

	if (cap < EPB_FIXED + (size_t)cap_len)
		return 0;
	iface = iface_of(ifs, &k, e->ifname, b->netns);
	start = k.p;
	hdr[0] = PCAPNG_EPB;
	hdr[1] = 0;
	hdr[2] = iface;
	hdr[3] = (uint32_t)(e->timestamp_ns >> 32);
	hdr[4] = (uint32_t)e->timestamp_ns;
	put(&k, hdr, sizeof(hdr));
	put32(&k, cap_len);
	/* The original length: the IP packet as the kernel held it, never below what is kept. */
	put32(&k, e->packet_len > cap_len ? e->packet_len : cap_len);
	put(&k, b->data, b->len);
	if (b->snap_len)
		put(&k, b->snap, b->snap_len);
	pad4(&k, cap_len);
	put_opt(&k, PCAPNG_EPB_FLAGS, &flags, 4);
	put_comment(&k, e, mask);
	if (!blk_end(&k, start))
		return 0;
	/* Only now is the new interface (if any) described in dst: remember it. */
	if (iface == n_before && n_before < PCAPNG_IFACES_MAX) {
		snprintf(ifs->ifs[iface].name, sizeof(ifs->ifs[iface].name), "%s",
			 iface == PCAPNG_IFACES_MAX - 1 ? "other" : e->ifname);
		ifs->ifs[iface].netns = iface == PCAPNG_IFACES_MAX - 1 ? 0 : b->netns;
		ifs->n++;
	}
	ifs->last = iface;
	return (size_t)(k.p - dst);
}

/* An IPv6 chain is left out of hdr[], so only the fixed header stands for such a packet: what
 * follows it in hdr[] is not what followed it on the wire (nor does a payload follow it). */
void pkt_bytes_of_record(const struct pkt_record *rec, size_t size, struct pkt_bytes *b)
{
	int snap = decode_record_snap_len(rec, size);

	b->data = rec->hdr;
	b->len = rec->hdr_len;
	b->snap = rec->snap;
	b->snap_len = snap > 0 ? (uint32_t)snap : 0;
	if (rec->l3_proto == 6 && rec->ext_count && b->len > 40) {
		b->len = 40;
		b->snap_len = 0;
	}
	b->netns = rec->netns;
}
