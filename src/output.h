/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Output: formats events into a large buffer and writes it in big writes. */
#ifndef PKTRACE_OUTPUT_H
#define PKTRACE_OUTPUT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

enum output_format {
	OUTPUT_TABLE = 0,
	OUTPUT_JSON,
	OUTPUT_TEXT, /* tcpdump's line with the process in front */
	OUTPUT_PCAPNG, /* -w: packets, not events (output_packet) */
};

#define OUTPUT_BUF_SIZE (1 << 20)
/* Interface description blocks a pcapng file gets; the last one stands for all the others. */
#define PCAPNG_IFACES_MAX 256

/* A packet's bytes as a file holds them (from the IP header on) and its network namespace. */
struct pkt_bytes {
	const uint8_t *data;
	uint32_t len;
	uint32_t netns; /* inode; 0: unknown (a file read back without it) */
	const uint8_t *snap; /* --snaplen: payload bytes that follow data[] on the wire */
	uint32_t snap_len;
};

/* The interfaces a pcapng file has described so far: (name, netns) pairs, by index. */
struct pcapng_ifaces {
	uint32_t host_netns; /* pktrace's own: its interfaces get no description */
	uint32_t n;
	uint32_t last; /* index of the last match: packets come in runs */
	uint64_t overflow; /* packets written against the catch-all last interface */
	struct {
		uint32_t netns;
		char name[17];
	} ifs[PCAPNG_IFACES_MAX];
};

/* The section header block that begins a pcapng file. */
size_t format_pcapng_header(char *dst, size_t cap);
/*
 * One enhanced packet block for b (its process, the events it was, as its comment), preceded by
 * an interface description block when (e->ifname, b->netns) is new to ifs. 0: cap too small,
 * ifs unchanged.
 */
/* The bytes of a ring-buffer record a pcapng file holds (see README: IPv6 chains). */
struct pkt_record;
void pkt_bytes_of_record(const struct pkt_record *rec, size_t size, struct pkt_bytes *b);
size_t format_pcapng_packet(char *dst, size_t cap, struct pcapng_ifaces *ifs,
			    const struct pkt_event *e, uint64_t mask, const struct pkt_bytes *b);
#define OUTPUT_CANCEL_GRACE_NS 250000000ULL

struct output {
	int fd;
	int owns_fd;
	enum output_format format;
	int header_done;
	int header_owed; /* the table header is still at the front of buf, not yet written */
	/* When set and non-zero (a stop was asked for), a reader that takes nothing more for
	 * OUTPUT_CANCEL_GRACE_NS makes writes give up with ECANCELED instead of blocking. */
	const volatile sig_atomic_t *cancel;
	uint64_t cancel_ns; /* CLOCK_MONOTONIC when the cancel was first seen; 0: not yet */
	int err; /* first write error (positive errno), sticky; len then counts bytes still owed */
	uint64_t events_pending; /* events formatted into buf since the last complete flush */
	uint64_t events_written; /* events whose bytes all reached the file */
	struct pcapng_ifaces png; /* OUTPUT_PCAPNG */
	const struct pkt_bytes *packet; /* the packet output_packet() is appending */
	uint64_t packet_events;
	size_t len;
	char buf[OUTPUT_BUF_SIZE];
};

/*
 * Format one event into dst (at most cap bytes, newline included, no NUL needed).
 * Return the number of bytes written, or 0 when cap is too small.
 */
size_t format_json(char *dst, size_t cap, const struct pkt_event *e);
size_t format_table(char *dst, size_t cap, const struct pkt_event *e);
size_t format_table_header(char *dst, size_t cap);
size_t format_text(char *dst, size_t cap, const struct pkt_event *e);

/*
 * Open path for writing (NULL or "-": stdout). A file is created 0600 or truncated; a symbolic
 * link is never followed (-ELOOP). Return 0 or -errno.
 */
int output_open(struct output *o, const char *path, enum output_format format);
/*
 * Append one event; writes out the buffer when it is nearly full. Return 0 or -errno; after a
 * write error every later call returns the same error. -EMSGSIZE: the line exceeds the buffer.
 */
int output_event(struct output *o, const struct pkt_event *e);
/*
 * OUTPUT_PCAPNG: append one packet, the events it was in events (an event_mask). As above;
 * -EINVAL for a text output. A pcapng output takes packets only (output_event: -EMSGSIZE).
 */
int output_packet(struct output *o, const struct pkt_event *e, uint64_t events,
		  const struct pkt_bytes *b);
/*
 * Write out everything buffered. Return 0 or -errno (EPIPE, ENOSPC, ...); -ECANCELED when a
 * cancel was asked for and the reader took nothing for the grace period (or it ran out). A
 * blocked write() returns only on a signal: whoever sets *cancel must keep signals coming
 * (an interval timer) until the flush returns.
 */
int output_flush(struct output *o);
/* Flush and close; return 0 or -errno. */
int output_close(struct output *o);

#endif /* PKTRACE_OUTPUT_H */
