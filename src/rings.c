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
};

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
			return 1;
		}
		r->pos += (len + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
	}
	return 0;
}

int rings__consume(struct rings *rs)
{
	uint64_t horizon = UINT64_MAX;
	int count = 0, err = 0, again = 0;

	/* One pass: what each ring holds now, merged. Records committed meanwhile wait for the
	 * next pass; they were stamped after the records of this pass (programs stamp right after
	 * reserving). A record still being written was reserved after its ring's last record, so
	 * stamped no earlier than it: while one blocks a ring, the other rings go on only up to
	 * that ring's last timestamp, as one shared ring would have stopped at it. */
	rs->nactive = 0;
	for (int i = 0; i < rs->n; i++) {
		struct ring *r = &rs->r[i];

		r->blocked = 0;
		r->end = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
		if (ring_head(r))
			rs->active[rs->nactive++] = i;
		else if (r->blocked && r->last_ts < horizon)
			horizon = r->last_ts;
	}
	while (rs->nactive) {
		int best = 0;
		struct ring *r;
		uint32_t *hdr, len;

		/* The oldest; on a tie, a BPF ring buffer's record first: an owner definition there
		 * and the fast record that names it can carry one timestamp. */
		for (int a = 1; a < rs->nactive; a++) {
			const struct ring *x = &rs->r[rs->active[a]], *b = &rs->r[rs->active[best]];

			if (x->head_ts < b->head_ts || (x->head_ts == b->head_ts && b->fast && !x->fast))
				best = a;
		}
		r = &rs->r[rs->active[best]];
		if (r->head_ts > horizon)
			break;
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
			rs->active[best] = rs->active[--rs->nactive];
			continue;
		}
		if (r->fast) {
			/* Empty again for the next lap: before the slot is given back (publish). */
			*(uint64_t *)hdr = 0;
			r->pos += PKT_FAST_SLOT;
		} else {
			r->pos += (len + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
		}
		r->last_ts = r->head_ts;
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
		}
	}
	for (int i = 0; i < rs->n; i++) {
		publish(&rs->r[i]);
		again |= rs->r[i].blocked;
	}
	/* A record left for the next pass, or still being written, counts as seen: the rings
	 * are not idle (the reorder stage must not let out what waits before it). */
	return err < 0 ? err : count + again;
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
