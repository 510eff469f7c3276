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

#include "rings.h"

struct ring {
	unsigned long *consumer_pos; /* ours to write */
	const unsigned long *producer_pos;
	const unsigned char *data;
	uint64_t pos;       /* the next record to read */
	uint64_t end;       /* this pass reads up to here (the producer position it began with) */
	uint64_t published; /* the position last written to consumer_pos */
	uint64_t head_ts;   /* the timestamp of the record at pos, when pos < end */
	uint64_t last_ts;   /* the timestamp of the last record handed over */
	uint64_t mark;      /* rings__mark's producer position */
	int blocked;        /* this pass: a record still being written stops the ring at pos */
};

struct rings {
	struct ring *r;
	int *active; /* rings with records left in this pass */
	int n, nactive, epfd;
	size_t ring_bytes, page;
	rings_record_fn fn;
	void *ctx;
};

void rings__free(struct rings *rs)
{
	if (!rs)
		return;
	for (int i = 0; rs->r && i < rs->n; i++) {
		if (rs->r[i].consumer_pos)
			munmap(rs->r[i].consumer_pos, rs->page);
		if (rs->r[i].producer_pos)
			munmap((void *)rs->r[i].producer_pos, rs->page + 2 * rs->ring_bytes);
	}
	if (rs->epfd >= 0)
		close(rs->epfd);
	free(rs->r);
	free(rs->active);
	free(rs);
}

struct rings *rings__new(const int *fds, int n, size_t ring_bytes, rings_record_fn fn,
			 void *ctx)
{
	struct rings *rs = calloc(1, sizeof(*rs));
	int err;

	if (!rs)
		return NULL;
	rs->epfd = -1;
	rs->n = n;
	rs->ring_bytes = ring_bytes;
	rs->page = (size_t)sysconf(_SC_PAGESIZE);
	rs->fn = fn;
	rs->ctx = ctx;
	rs->r = calloc(n, sizeof(*rs->r));
	rs->active = calloc(n, sizeof(*rs->active));
	rs->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!rs->r || !rs->active || rs->epfd < 0)
		goto fail;
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
		struct ring *r = &rs->r[i];
		void *p;

		p = mmap(NULL, rs->page, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		if (p == MAP_FAILED)
			goto fail;
		r->consumer_pos = p;
		p = mmap(NULL, rs->page + 2 * ring_bytes, PROT_READ, MAP_SHARED, fds[i], rs->page);
		if (p == MAP_FAILED)
			goto fail;
		r->producer_pos = p;
		r->data = (const unsigned char *)p + rs->page;
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
static int ring_head(struct rings *rs, struct ring *r)
{
	while (r->pos < r->end) {
		const uint32_t *hdr = (const uint32_t *)(r->data + (r->pos & (rs->ring_bytes - 1)));
		uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);

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
		if (ring_head(rs, r))
			rs->active[rs->nactive++] = i;
		else if (r->blocked && r->last_ts < horizon)
			horizon = r->last_ts;
	}
	while (rs->nactive) {
		int best = 0;
		struct ring *r;
		const uint32_t *hdr;
		uint32_t len;

		for (int a = 1; a < rs->nactive; a++)
			if (rs->r[rs->active[a]].head_ts < rs->r[rs->active[best]].head_ts)
				best = a;
		r = &rs->r[rs->active[best]];
		if (r->head_ts > horizon)
			break;
		hdr = (const uint32_t *)(r->data + (r->pos & (rs->ring_bytes - 1)));
		len = *hdr & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		err = rs->fn(rs->ctx, hdr + 2, len);
		if (err == RINGS_AGAIN) {
			err = 0;
			again = 1;
			break;
		}
		r->pos += (len + BPF_RINGBUF_HDR_SZ + 7) & ~7u;
		r->last_ts = r->head_ts;
		count++;
		if (err < 0)
			break;
		/* Space back to the kernel side now and then, not per record. */
		if (r->pos - r->published >= rs->ring_bytes / 16)
			publish(r);
		if (!ring_head(rs, r)) {
			rs->active[best] = rs->active[--rs->nactive];
			if (r->blocked && r->last_ts < horizon)
				horizon = r->last_ts;
		}
	}
	for (int i = 0; i < rs->n; i++)
		publish(&rs->r[i]);
	/* A record left for the next pass counts as seen: the rings are not idle. */
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
