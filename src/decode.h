/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Decoding of the L3/L4 header bytes carried by a ring-buffer record. */
#ifndef PKTRACE_DECODE_H
#define PKTRACE_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "event.h"
#include "events.h"

enum decode_error {
	DECODE_OK = 0,
	DECODE_TRUNCATED_IP,   /* fewer bytes than the IP header (or an extension header) needs */
	DECODE_BAD_IP_VERSION, /* version nibble is neither 4 nor 6 */
	DECODE_BAD_IHL,        /* IPv4 header length below 20 bytes */
	DECODE_FRAGMENT,       /* a non-first fragment: no TCP header in it */
	DECODE_TRUNCATED_TCP,  /* fewer bytes than the TCP header (with its options) needs */
	DECODE_BAD_DATA_OFFSET, /* TCP data offset below 5 words */
	DECODE_BAD_RECORD,     /* a ring-buffer record that does not hold what its fields say */
	DECODE_NO_L4,          /* the kernel could reach no transport header (PKT_F_NO_L4) */
	DECODE_TRUNCATED_L4,   /* fewer bytes than a UDP or ICMP header needs */
	DECODE_NO_OWNER,       /* a packet record names an owner definition pktrace does not hold */
	DECODE__MAX,
};

/*
 * Two outcomes are errors of different weight. A negative return: not even the IP header could
 * be read (or the record is malformed); there is no event, *out is unspecified, and the caller
 * counts it as a decode error. A return of 0 with out->l4_error set (DECODE_TRUNCATED_L4,
 * DECODE_FRAGMENT, DECODE_TRUNCATED_TCP, DECODE_BAD_DATA_OFFSET, DECODE_NO_L4, or
 * DECODE_TRUNCATED_IP for an extension-header chain cut short): the packet has no transport
 * header we can read, but it is still an event with its addresses and chain, to be written and
 * counted apart from the decode errors.
 */
static inline int decode_error_is_partial(int l4_error)
{
	return l4_error > 0 && l4_error < DECODE__MAX && l4_error != DECODE_BAD_RECORD &&
	       l4_error != DECODE_NO_OWNER;
}

/*
 * Decode a whole IP packet in buf[0..len): the IP header (IPv4 options and any number of IPv6
 * extension headers stepped over, bounded only by len) and the TCP header. Returns 0 and fills
 * *out (the chain summary included), or a negative enum decode_error (see above).
 */
int decode_headers(const uint8_t *buf, size_t len, struct pkt_headers *out);
/*
 * The same for a packet a capture's snapshot length may have cut (-r): a TCP header cut inside
 * its options still gives the fixed header and the options before the cut (opts.cut says
 * where), as tcpdump prints them.
 */
int decode_headers_snap(const uint8_t *buf, size_t len, struct pkt_headers *out);

/*
 * The same for a ring-buffer record (size bytes), in the layout pktrace.h gives for hdr[]: the
 * chain summary comes from ext_count, ext_len and the types after the TCP header. Every field is
 * checked against size and hdr_len; -DECODE_BAD_RECORD for a record that does not hold what it
 * claims (a claim record included).
 */
struct pkt_record;
int decode_record_headers(const struct pkt_record *r, size_t size, struct pkt_headers *out);

/*
 * --snaplen: how many payload bytes (snap[]) a packet record of size bytes carries: 0 for the two
 * sizes without snap_len; -DECODE_BAD_RECORD when snap_len claims more than the record holds or
 * the record ends inside snap_len. decode_record_headers rejects such records too.
 */
int decode_record_snap_len(const struct pkt_record *r, size_t size);

/*
 * Turn one ring-buffer record (struct pkt_record, size bytes) into *e: every field but the host
 * name and container id, which enrichment adds. e->ifname is "" when the kernel gave no name.
 * *ifindex and *uts_key are set for the caller's look-ups. Returns 0 (an event to write, maybe
 * without TCP fields: e->hdr.l4_error) or a negative enum decode_error (no event).
 */
int decode_record(const void *data, size_t size, uint64_t boot_to_real_ns, struct pkt_event *e,
		  uint32_t *ifindex, uint64_t *uts_key);

/*
 * Make a struct pkt_record (out, room bytes) of a packet record as the ring buffer carries it
 * (struct pkt_wire, size bytes), with the owner and interface name of its owner definition
 * (def: NULL for none, then an empty owner and name). Returns the record's size, or
 * -DECODE_BAD_RECORD for a record that is no struct pkt_wire or does not fit in room.
 */
struct pkt_owner;
long decode_wire(const void *data, size_t size, const struct pkt_owner *owner,
		 const char *ifname, struct pkt_record *out, size_t room);
/* The size of the struct pkt_record decode_wire makes of a size-byte struct pkt_wire (0: it is
 * too short to be one). */
size_t decode_wire_len(size_t size);

/* The packet events one decoded packet gives: its IP event, and its transport's (if any). */
event_mask decode_packet_events(const struct pkt_event *e);

/*
 * Turn a flow record (PKT_REC_FLOW) into *e (e->event: begin or end, e->flow). Returns 0 or
 * -DECODE_BAD_RECORD for a record that does not hold a struct pkt_flow.
 */
int decode_flow_record(const void *data, size_t size, uint64_t boot_to_real_ns,
		       struct pkt_event *e, uint64_t *uts_key);
/* "fin", "rst_sent", ... for an enum flow_close_reason; "" / "local" / "remote" for a closer. */
const char *flow_close_reason_name(unsigned int reason);
const char *flow_closer_name(unsigned int closer);

/* Fill the process fields of *e from an owner record; *uts_key for the host name look-up. */
struct pkt_owner;
void decode_owner(const struct pkt_owner *o, struct pkt_event *e, uint64_t *uts_key);

/* Whether h's ports were read: a complete UDP or TCP header, or a 20-byte TCP header whose data
 * offset is below 5. */
static inline bool pkt_ports_read(const struct pkt_headers *h)
{
	if (h->protocol != IPPROTO_TCP && h->protocol != IPPROTO_UDP &&
	    h->protocol != IPPROTO_UDPLITE)
		return false;
	/* Only a TCP header has a data offset to be bad. */
	return !h->l4_error || h->l4_error == DECODE_BAD_DATA_OFFSET;
}

/* A short name for a decode error, for the summary ("truncated TCP header"). */
const char *decode_strerror(int err);

#endif /* PKTRACE_DECODE_H */
