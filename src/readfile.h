/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* -r: packets of a pcap or pcapng file (libpcap) turned into events, as live capture makes them. */
#ifndef PKTRACE_READFILE_H
#define PKTRACE_READFILE_H

#include <stdint.h>
#include <stdio.h>

#include "decode.h"
#include "event.h"
#include "output.h"

/* Bounds of the pcapng walker: interfaces per section, comment bytes kept per packet. */
#define PCAPNG_READ_IFACES 1024
#define PCAPNG_COMMENT_MAX 4096
/* A block larger than this is malformed (libpcap's own limit is 16 MiB). */
#define PCAPNG_BLOCK_MAX (16u << 20)

/*
 * What pcapng keeps beside a packet that libpcap 1.10 does not pass on: the interface's name
 * and namespace, the direction flags and the comments. Walks the file's blocks in step with
 * libpcap (one packet block per packet libpcap returns), each block as libpcap reads it.
 */
struct pcapng_walk {
	const uint8_t *p; /* the rest of the block being walked */
	size_t n;
	int active; /* 1: a pcapng file being walked; 0: pcap, or given up on a malformed block */
	uint64_t packet_blocks; /* packet blocks walked */
	int swap;   /* the section's byte order is not ours */
	uint64_t malformed; /* blocks the walk gave up on (then no metadata from there on) */
	uint32_t n_ifaces;
	struct {
		char name[17];
		uint32_t netns;
	} ifs[PCAPNG_READ_IFACES];
	/* The packet block just read. */
	uint32_t iface;
	uint32_t epb_flags;
	size_t comment_len;
	char comment[PCAPNG_COMMENT_MAX + 1];
};

/*
 * Walk one whole block of len bytes (its header, body and trailer; len 0: a block cut short or
 * malformed). 1: a packet block, its metadata in w; 0: another block, or the walk is inactive;
 * -1: malformed, and the walk gives up (no metadata from there on).
 */
int pcapng_walk_block(struct pcapng_walk *w, const uint8_t *blk, size_t len);

/*
 * Fill e's process fields and *sk_proto from a comment in pktrace's "key: value" form (see
 * pcapng.h); host and cid (at least 256 bytes each) hold the host name and container id e points
 * to. Returns how many known keys were found (0: not pktrace's comment; e's fields left as
 * they were).
 */
int pcapng_comment_parse(const char *text, size_t len, struct pkt_event *e, uint8_t *sk_proto,
			 char *host, char *cid);

struct readfile_stats {
	uint64_t packets;       /* packets libpcap returned */
	uint64_t events;        /* packets that decoded into an event */
	uint64_t link_errors;   /* link-layer header missing or not IP: no event */
	uint64_t decode_errors; /* IP header not decodable: no event */
	uint64_t no_comment;    /* events without pktrace's process comment (empty process) */
};

struct readfile {
	void *pcap; /* pcap_t */
	int dlt;
	struct pcapng_walk *walk;
	struct idb_fix *fix; /* the filter libpcap reads through (owned by the pcap_t) */
	int empty;           /* a pcapng section header alone: no packet, no interface */
	struct readfile_stats st;
	char host[256];
	char cid[256];
	char err[320];
};

/*
 * Open path ("-": standard input) for reading. Returns 0, or -errno / -EINVAL with a one-line
 * reason in rf->err (not a capture file, a link type pktrace cannot decode).
 */
int readfile_open(struct readfile *rf, const char *path);
/* The same on an open stream at the file's start (closed by readfile_close): the fuzzer's way in. */
int readfile_fopen(struct readfile *rf, FILE *fp);
/*
 * The next packet that decodes into an event: *e filled (process fields from the comment, or
 * empty), *b its IP bytes. Returns 1, 0 at the end, or -EIO with the reason in rf->err (a
 * truncated or malformed file: what came before stands).
 */
int readfile_next(struct readfile *rf, struct pkt_event *e, struct pkt_bytes *b);
/*
 * fn(ctx) runs when reading a pipe would wait for its writer, and again after each signal
 * while it waits: the time to flush the outputs. Nonzero from fn stops the reading there.
 */
void readfile_on_wait(struct readfile *rf, int (*fn)(void *ctx), void *ctx);
void readfile_close(struct readfile *rf);

#endif /* PKTRACE_READFILE_H */
