/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The reader of the per-CPU ring buffers: records of all CPUs handed over merged by their
 * timestamps (the first 8 bytes of each record), as one shared ring would have given them.
 * The fast rings (pktrace.h) are merged in too. Written here rather than with libbpf's
 * ring_buffer (1.1 in Debian 12): that one publishes its position after every record, which
 * makes every reservation on the kernel side miss the cache line, and reads the rings one
 * after the other, not merged.
 */
#ifndef PKTRACE_RINGS_H
#define PKTRACE_RINGS_H

#include <stddef.h>

struct rings;

/* Called once per record; a negative return ends the current consume (the rest stays), and so
 * does RINGS_AGAIN, which leaves this record to be handed over again in the next pass. */
typedef int (*rings_record_fn)(void *ctx, const void *data, size_t size);
#define RINGS_AGAIN 1

/* The fast rings beside them (pktrace.h): n elements of an mmapable array map (fd, kept open
 * by the caller), each PKT_FAST_CTL bytes of control then bytes of slots. */
struct rings_fast {
	int fd, n;
	size_t bytes;
};

/* n ring-buffer maps (fds, kept open by the caller) of ring_bytes each, and the fast rings
 * (NULL: none). NULL: errno set. */
struct rings *rings__new(const int *fds, int n, size_t ring_bytes, const struct rings_fast *fast,
			 rings_record_fn fn, void *ctx);
/* Wait up to timeout_ms for a wakeup, then hand over what is there: records seen or -errno. */
int rings__poll(struct rings *r, int timeout_ms);
/* Hand over every record committed now, merged by timestamp: records seen (one left for the
 * next pass included) or the callback's negative return. */
int rings__consume(struct rings *r);
/* During a pass, from the callback: every record not handed over yet is stamped at or after
 * this (CLOCK_BOOTTIME ns; 0: nothing known), so one handed over stamped at or before it is in
 * timestamp order with all that come after it. It rests on the kernel side's rules: a record
 * is stamped after it is reserved (so one reserved after a pass read its ring's position is
 * stamped after the pass began), and one in a fast ring overtaken by a later reservation
 * before its commit says so (PKT_FAST_OVERTAKEN); one in a BPF ring buffer may always be. */
uint64_t rings__safe_ns(const struct rings *r);
/* Note where each ring's producer is now; rings__passed: whether the reader has read up to
 * there in every ring (1 before any mark). */
void rings__mark(struct rings *r);
int rings__passed(const struct rings *r);
void rings__free(struct rings *r);

#endif /* PKTRACE_RINGS_H */
