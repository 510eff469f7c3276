/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The hold: packets of a passive connection wait here until the kernel says which task took
 * the connection (first send or receive, or accept), then go out with that task as owner, in
 * their order and with their timestamps. Bounded in packets and bytes; preallocated.
 */
#ifndef PKTRACE_HOLD_H
#define PKTRACE_HOLD_H

#include <stddef.h>
#include <stdint.h>

#include "pktrace.h"

struct hold;

/* The longest a connection whose handshake completed waits on, from its first held packet:
 * past the kernel's limit for a request whose SYN-ACK goes unanswered (63 s with the default
 * tcp_synack_retries), for one the kernel gave up on without a word to either side. */
#define HOLD_QUEUED_MAX_NS (120 * 1000000000ULL)

struct hold_config {
	uint64_t wait_ns;   /* how long a connection may wait for a task to take it */
	size_t max_packets; /* records held at once */
	size_t max_bytes;   /* record bytes held at once */
	size_t max_record;  /* the largest record to hold (--snaplen: with snap[]); 0: up to hdr[]'s
			     * end. A larger one goes out at once, counted early */
};

/* Emit one released record with owner as its owner; a negative return is passed back. */
typedef int (*hold_emit_fn)(void *ctx, const struct pkt_record *rec, size_t size,
			    const struct pkt_owner *owner);

struct hold_stats {
	uint64_t held;         /* records put on hold */
	uint64_t taken;        /* released to the task that took the connection */
	uint64_t waited_out;   /* released with the acceptor or listener's owner: closed, reset,
				* or the wait ran out (at exit too) */
	uint64_t early;        /* released early with the provisional owner: no room */
	uint64_t out_of_scope; /* released to an owner outside the scope: not emitted */
	uint64_t queued;       /* connections whose wait went on past wait_ns: their handshake
				* completed, nobody took or named them yet (queued for accept()) */
};

struct hold *hold__new(const struct hold_config *cfg, hold_emit_fn emit, void *ctx);
/* What a held packet is to its connection's handshake (hold__packet). */
enum hold_pkt {
	HOLD_PKT_OTHER = 0,
	HOLD_PKT_SYN,     /* a SYN without ACK: a connection begins */
	HOLD_PKT_RST,     /* a reset: nobody will take the connection */
	HOLD_PKT_ACK_IN,  /* received, ACK without SYN or RST: the client completed the handshake */
	HOLD_PKT_ESTABLISHED, /* a flow's begin (PKT_FLOW_HELD): the handshake completed */
};

/* A record with PKT_F_HELD (or a flow begin with PKT_FLOW_HELD) whose connection is c (as its
 * local socket sees it). */
int hold__packet(struct hold *h, const struct pkt_record *rec, size_t size,
		 const struct pkt_conn *c, enum hold_pkt what);
/* A claim record (kind PKT_REC_CLAIM). */
int hold__claim(struct hold *h, const struct pkt_record *rec, size_t size);
/* Release what has waited past its time, as of now_ns (CLOCK_BOOTTIME). A connection whose
 * handshake completed (a SYN, then the client's ACK) and that nobody took or named yet waits
 * another wait_ns, up to HOLD_QUEUED_MAX_NS: it is queued for accept() (or the kernel keeps
 * it as a request: TCP_DEFER_ACCEPT, a full queue), where no task could take it. */
int hold__expire(struct hold *h, uint64_t now_ns);
/*
 * The timestamp later events must wait behind to stay in order: the oldest held record's,
 * among connections held less than wait_ns before now_ns (a connection held longer no longer
 * holds anything back); UINT64_MAX when none.
 */
uint64_t hold__order_barrier(struct hold *h, uint64_t now_ns, uint64_t wait_ns);
/* Release everything still held (at exit). */
int hold__flush(struct hold *h);
/* Records held now. */
size_t hold__pending(const struct hold *h);
const struct hold_stats *hold__stats(const struct hold *h);
void hold__free(struct hold *h);

#endif /* PKTRACE_HOLD_H */
