/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The reorder stage: records from the ring buffer wait here, sorted by timestamp, until they
 * are older than the newest timestamp seen minus the window, or the clock has moved past them
 * by the window, or the stage is flushed. Records from two CPUs reach the ring buffer up to
 * tens of microseconds out of timestamp order; the stage writes them in order. A record that
 * comes later than the window allows is written at once and counted, never dropped.
 * Fixed capacity, allocated once: a full stage releases its oldest record early.
 */
#ifndef PKTRACE_ORDER_H
#define PKTRACE_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include "pktrace.h"

struct order;

struct order_config {
	uint64_t window_ns; /* 0: no reordering, records pass straight through (still counted) */
	size_t capacity;    /* records held at once */
	size_t max_record;  /* bytes of the largest record (0: a header-only one); larger: unsorted */
};

/* Write one released record; owner NULL: the record's own. late: an earlier-released record
 * had a later timestamp. A negative return is passed back. */
typedef int (*order_emit_fn)(void *ctx, const struct pkt_record *rec, size_t size,
			     const struct pkt_owner *owner, int late);

struct order_stats {
	uint64_t pushed;      /* records taken in */
	uint64_t late;        /* released after a record with a later timestamp */
	uint64_t max_late_ns; /* how far behind the latest released timestamp, at the most */
	uint64_t early;       /* released before their window was up: the stage was full */
	uint64_t max_held;    /* records held at once, at the most */
	uint64_t direct;      /* written at once: known to be in order (order__set_safe) */
};

struct order *order__new(const struct order_config *cfg, order_emit_fn emit, void *ctx);
/* Take one record (size bytes; owner NULL: its own) and release what is due. */
int order__push(struct order *o, const struct pkt_record *rec, size_t size,
		const struct pkt_owner *owner);
/* In two steps, for a record made in place: a slot for a record stamped ts_ns of up to size
 * bytes, to fill and take in with order__commit (nothing else on the stage between); NULL: it
 * cannot wait (no window, too late, too large), order__push it. *err: what a full stage's
 * early release returned. */
struct pkt_record *order__slot(struct order *o, uint64_t ts_ns, size_t size, int *err);
/* Take in the record written to the last order__slot (size bytes, its timestamp as promised;
 * owner NULL: its own) and release what is due. */
int order__commit(struct order *o, size_t size, const struct pkt_owner *owner);
/* Release what is older than now_ns (CLOCK_BOOTTIME, as the records) minus the window. */
int order__expire(struct order *o, uint64_t now_ns);
/* No record still to come is stamped before ts_ns (the ring reader knows: rings__safe_ns), so
 * those stamped at or before it are written at once (before the barrier), without waiting for
 * the window. 0: nothing known. */
void order__set_safe(struct order *o, uint64_t ts_ns);
/* Hold back, whatever the clock and the window say, every record stamped at or after ts_ns
 * (UINT64_MAX: none): a record that will join later (a held packet) is that old. A full stage
 * still lets its oldest out (counted early); order__flush lets everything out. */
void order__set_barrier(struct order *o, uint64_t ts_ns);
/* Release everything held, in order (at exit). */
int order__flush(struct order *o);
size_t order__pending(const struct order *o);
uint64_t order__window_ns(const struct order *o);
/* The latest timestamp taken in so far (0: none). */
uint64_t order__newest(const struct order *o);
const struct order_stats *order__stats(const struct order *o);
void order__free(struct order *o);

#endif /* PKTRACE_ORDER_H */
