/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Decoding of the L3/L4 header bytes carried by a ring-buffer record. */
#ifndef PKTRACE_DECODE_H
#define PKTRACE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

enum decode_error {
	DECODE_OK = 0,
	DECODE_TRUNCATED_IP,   /* fewer bytes than the IP header (or an extension header) needs */
	DECODE_BAD_IP_VERSION, /* version nibble is neither 4 nor 6 */
	DECODE_BAD_IHL,        /* IPv4 header length below 20 bytes */
	DECODE_NOT_TCP,        /* next protocol is not TCP */
	DECODE_FRAGMENT,       /* a non-first fragment: no TCP header in it */
	DECODE_TRUNCATED_TCP,  /* fewer bytes than the TCP header (with its options) needs */
	DECODE_BAD_DATA_OFFSET, /* TCP data offset below 5 words */
	DECODE_BAD_RECORD,     /* a ring-buffer record shorter than its own header length says */
	DECODE__MAX,
};

/*
 * Decode the IP header (IPv4 options and IPv6 extension headers stepped over) and the TCP
 * header in buf[0..len). Returns 0 and fills *out, or a negative enum decode_error; *out is
 * then unspecified and must not be printed.
 */
int decode_headers(const uint8_t *buf, size_t len, struct pkt_headers *out);

/*
 * Turn one ring-buffer record (struct pkt_record, size bytes) into *e: every field but the host
 * name and container id, which enrichment adds. e->ifname is "" when the kernel gave no name.
 * *ifindex and *uts_inum are set for the caller's look-ups. Returns 0 or a negative
 * enum decode_error (DECODE_BAD_RECORD for a record that does not hold what it claims).
 */
int decode_record(const void *data, size_t size, uint64_t boot_to_real_ns, struct pkt_event *e,
		  uint32_t *ifindex, uint32_t *uts_inum);

/* Fill the process fields of *e from an owner record; *uts_inum for the host name look-up. */
struct pkt_owner;
void decode_owner(const struct pkt_owner *o, struct pkt_event *e, uint32_t *uts_inum);

/* A short name for a decode error, for the summary ("truncated TCP header"). */
const char *decode_strerror(int err);

#endif /* PKTRACE_DECODE_H */
