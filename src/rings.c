// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The per-CPU ring buffers' reader: see rings.h. The layout read here is the kernel's
 * (kernel/bpf/ringbuf.c): a consumer page we write, a producer page, then the data pages
 * mapped twice in a row, so that a record that wraps around reads as one piece. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>

#include "pktrace.h"
#include "rings.h"

struct ring {
	unsigned long *consumer_pos; /* ours to write */
	const unsigned long *producer_pos;
	unsigned char *data;
	uint64_t mask; /* data bytes - 1 */
	int fast;      /* a fast ring: slots with a u64 header, 0 until committed */
	uint64_t pos;       /* the next record to read */
	uint64_t end;       /* this pass reads up to here (the producer position it began with) */
	uint64_t published; /* the position last written to consumer_pos */
	uint64_t head_ts;   /* the timestamp of the record at pos, when pos < end */
	uint64_t last_ts;   /* the timestamp of the last record handed over */
	uint64_t mark;      /* rings__mark's producer position */
	int blocked;        /* this pass: a record still being written stops the ring at pos */
	int head_over;      /* the record at pos may be followed by ones stamped before it */
	uint64_t low;       /* every record from pos on is stamped at or after it (rings__safe_ns) */
};

struct rings {
	struct ring *r; /* the fast rings first: their positions are read first in a pass */
	int *active;    /* rings with records left in this pass */
	int n, nactive, epfd;
	size_t ring_bytes, page;
	void *fast_map; /* the fast rings' mapping, fast_len bytes */
	size_t fast_len;
	rings_record_fn fn;
	void *ctx;
	uint64_t safe_ns; /* every record not handed over yet is stamped at or after it */
};

/* A record reserved after a pass read its ring's producer position is stamped after the clock
 * the pass read before, less this: either side's clock read may be reordered with the load or
 * the store of the position by a few hundred cycles, and the reader's clock (the vDSO's) and
 * the programs' (the kernel's fast accessor) may differ a little around a timekeeping update. */
#define RINGS_CLOCK_SLACK_NS 10000

/* The ring space a BPF ring buffer record takes, from its header's length word. */
static uint32_t rb_span(uint32_t len)
{
	return ((len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)) + BPF_RINGBUF_HDR_SZ + 7) &
	       ~7u;
}

void rings__free(struct rings *rs)
{
	if (!rs)
		return;
	for (int i = 0; rs->r && i < rs->n; i++) {
		if (rs->r[i].fast)
			continue;
		if (rs->r[i].consumer_pos)
			munmap(rs->r[i].consumer_pos, rs->page);
		if (rs->r[i].producer_pos)
			munmap((void *)rs->r[i].producer_pos, rs->page + 2 * rs->ring_bytes);
	}
	if (rs->fast_map)
		munmap(rs->fast_map, rs->fast_len);
	if (rs->epfd >= 0)
		close(rs->epfd);
	free(rs->r);
	free(rs->active);
	free(rs);
}

struct rings *rings__new(const int *fds, int n, size_t ring_bytes, const struct rings_fast *fast,
			 rings_record_fn fn, void *ctx)
{
	struct rings *rs = calloc(1, sizeof(*rs));
	int nfast = fast ? fast->n : 0, err;

	if (!rs)
		return NULL;
	rs->epfd = -1;
	rs->n = n + nfast;
	rs->ring_bytes = ring_bytes;
	rs->page = (size_t)sysconf(_SC_PAGESIZE);
	rs->fn = fn;
	rs->ctx = ctx;
	rs->r = calloc(rs->n, sizeof(*rs->r));
	rs->active = calloc(rs->n, sizeof(*rs->active));
	rs->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!rs->r || !rs->active || rs->epfd < 0)
		goto fail;
	if (nfast) {
		/* An array map's elements back to back, each a multiple of 8 bytes. */
		size_t stride = (PKT_FAST_CTL + fast->bytes + 7) & ~(size_t)7;

		rs->fast_len = (stride * nfast + rs->page - 1) & ~(rs->page - 1);
		rs->fast_map = mmap(NULL, rs->fast_len, PROT_READ | PROT_WRITE, MAP_SHARED, fast->fd, 0);
		if (rs->fast_map == MAP_FAILED) {
			rs->fast_map = NULL;
			goto fail;
		}
		for (int i = 0; i < nfast; i++) {
			struct pkt_fast_ctl *ctl =
				(struct pkt_fast_ctl *)((unsigned char *)rs->fast_map + i * stride);
			struct ring *r = &rs->r[i];

			r->fast = 1;
			r->consumer_pos = (unsigned long *)&ctl->tail;
			r->producer_pos = (const unsigned long *)&ctl->head;
			r->data = (unsigned char *)ctl + PKT_FAST_CTL;
			r->mask = fast->bytes - 1;
			r->pos = r->published = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
		}
	}
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
		struct ring *r = &rs->r[nfast + i];
		void *p;

		p = mmap(NULL, rs->page, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		if (p == MAP_FAILED)
			goto fail;
		r->consumer_pos = p;
		p = mmap(NULL, rs->page + 2 * ring_bytes, PROT_READ, MAP_SHARED, fds[i], rs->page);
		if (p == MAP_FAILED)
			goto fail;
		r->producer_pos = p;
		r->data = (unsigned char *)p + rs->page;
		r->mask = ring_bytes - 1;
		r->pos = r->published = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
		if (epoll_ctl(rs->epfd, EPOLL_CTL_ADD, fds[i], &ev))
			goto fail;
	}
	return rs;
fail:
	err = errno;
	rings__free(rs);
	errno = err;
	return NULL;
}

/* Give the space read so far back to the kernel side. */
static void publish(struct ring *r)
{
	if (r->published != r->pos) {
		__atomic_store_n(r->consumer_pos, r->pos, __ATOMIC_RELEASE);
		r->published = r->pos;
	}
}

/* Step past discarded records to the next committed one and note its timestamp; 0: none in
 * this pass (the end reached, or a record still being written: it waits for the next pass). */
static int ring_head(struct ring *r)
{
	while (r->pos < r->end) {
		const uint32_t *hdr = (const uint32_t *)(r->data + (r->pos & r->mask));
		uint32_t len;

		if (r->fast) {
			/* The slot's u64 header: the record's length once committed. */
			uint64_t n = __atomic_load_n((const uint64_t *)hdr, __ATOMIC_ACQUIRE);

			if (!n) {
				r->end = r->pos;
				r->blocked = 1;
				return 0;
			}
			r->head_ts = *(const uint64_t *)(hdr + 2);
			r->head_over = !!(n & PKT_FAST_OVERTAKEN);
			return 1;
		}
		len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		if (len & BPF_RINGBUF_BUSY_BIT) {
			r->end = r->pos;
			r->blocked = 1;
			return 0;
		}
		if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
			r->head_ts = len >= 8 ? *(const uint64_t *)(hdr + 2) : 0;
			/* Whether one reserved after it came in before it was stamped: unknown. */
			r->head_over = 1;
			return 1;
		}
		r->pos += rb_span(len);
	}
	return 0;
}

/* What every record of the ring from its head on is stamped at or after, as far as known: the
 * head's timestamp, unless one reserved after it may be stamped before it. */
static uint64_t ring_bound(const struct ring *r)
{
	return r->head_over ? r->low : r->head_ts;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int rings__consume(struct rings *rs)
{
	uint64_t horizon = UINT64_MAX, t0, left = UINT64_MAX, safe;
	struct timespec now;
	int count = 0, err = 0, again = 0;

	/* One pass: what each ring holds now, merged. Records committed meanwhile wait for the
	 * next pass; they were stamped after the records of this pass (programs stamp right after
	 * reserving). A record still being written was reserved after its ring's last record, so
	 * stamped no earlier than it: while one blocks a ring, the other rings go on only up to
	 * that ring's last timestamp, as one shared ring would have stopped at it. And a record
	 * reserved after this pass reads its ring's position is stamped after the clock read
	 * first, less the slack: what rings__safe_ns rests on, with each ring's low. */
	clock_gettime(CLOCK_BOOTTIME, &now);
	t0 = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	t0 = t0 > RINGS_CLOCK_SLACK_NS ? t0 - RINGS_CLOCK_SLACK_NS : 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	rs->nactive = 0;
	for (int i = 0; i < rs->n; i++) {
		struct ring *r = &rs->r[i];

		r->blocked = 0;
		r->end = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
		if (ring_head(r))
			rs->active[rs->nactive++] = i;
		else if (r->blocked && r->last_ts < horizon)
			horizon = r->last_ts;
		if (r->blocked)
			left = min_u64(left, r->low);
	}
	while (rs->nactive) {
		int best = 0;
		struct ring *r;
		uint32_t *hdr, len;

		/* The oldest; on a tie, a BPF ring buffer's record first: an owner definition there
		 * and the fast record that names it can carry one timestamp. What is safe: the
		 * least that a record not handed over yet can be stamped, this one's ring aside. */
		safe = ring_bound(&rs->r[rs->active[0]]);
		for (int a = 1; a < rs->nactive; a++) {
			const struct ring *x = &rs->r[rs->active[a]], *b = &rs->r[rs->active[best]];
			safe = min_u64(safe, ring_bound(x));
			if (x->head_ts < b->head_ts || (x->head_ts == b->head_ts && b->fast && !x->fast))
				best = a;
		}
		r = &rs->r[rs->active[best]];
		if (r->head_ts > horizon)
			break;
		rs->safe_ns = min_u64(min_u64(safe, left), t0);
		hdr = (uint32_t *)(r->data + (r->pos & r->mask));
		len = *hdr & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		if (r->fast && len > PKT_FAST_SLOT - 8)
			len = PKT_FAST_SLOT - 8; /* a slot holds no more */
		err = rs->fn(rs->ctx, hdr + 2, len);
		if (err == RINGS_AGAIN) {
			/* This ring waits for the next pass; the others go on, so that what the record
			 * waits for (its owner definition, behind a record stamped later in another
			 * ring) can come in this one. */
			err = 0;
			again = 1;
			left = min_u64(left, ring_bound(r)); /* it comes later */
			rs->active[best] = rs->active[--rs->nactive];
			continue;
		}
		if (r->fast) {
			/* Empty again for the next lap: before the slot is given back (publish). */
			*(uint64_t *)hdr = 0;
			r->pos += PKT_FAST_SLOT;
		} else {
			r->pos += rb_span(len);
		}
		r->last_ts = r->head_ts;
		if (!r->head_over && r->head_ts > r->low)
			r->low = r->head_ts; /* those after it were reserved after it was stamped */
		count++;
		if (err < 0)
			break;
		/* Space back to the kernel side now and then, not per record. */
		if (r->pos - r->published >= (r->mask + 1) / 16)
			publish(r);
		if (!ring_head(r)) {
			rs->active[best] = rs->active[--rs->nactive];
			if (r->blocked && r->last_ts < horizon)
				horizon = r->last_ts;
			if (r->blocked)
				left = min_u64(left, r->low);
		}
	}
	for (int i = 0; i < rs->n; i++) {
		struct ring *r = &rs->r[i];

		publish(r);
		again |= r->blocked;
		/* Read to its end: what comes next was reserved after this pass began. */
		if (!r->blocked && r->pos >= r->end && t0 > r->low)
			r->low = t0;
	}
	/* A record left for the next pass, or still being written, counts as seen: the rings
	 * are not idle (the reorder stage must not let out what waits before it). */
	return err < 0 ? err : count + again;
}

uint64_t rings__safe_ns(const struct rings *rs)
{
	return rs->safe_ns;
}

void rings__mark(struct rings *rs)
{
	for (int i = 0; i < rs->n; i++)
		rs->r[i].mark = __atomic_load_n(rs->r[i].producer_pos, __ATOMIC_ACQUIRE);
}

int rings__passed(const struct rings *rs)
{
	for (int i = 0; i < rs->n; i++)
		if (rs->r[i].pos < rs->r[i].mark)
			return 0;
	return 1;
}

int rings__poll(struct rings *rs, int timeout_ms)
{
	struct epoll_event ev[8];

	/* Which ring woke us does not matter: every pass reads them all. */
	if (epoll_wait(rs->epfd, ev, 8, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	return rings__consume(rs);
}
