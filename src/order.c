// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The reorder stage: see order.h. Keys sorted by insertion in a ring over preallocated slots:
 * records come nearly in order, so most go in at the tail and all leave from the head. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

/* Slots sit stride bytes apart: a header-only record, or the largest --snaplen makes. */
struct order_slot {
	uint32_t size;
	uint8_t has_owner;
	struct pkt_owner owner;
	struct pkt_record rec; /* its first size bytes; the slot has room for max_record */
};

/* The key beside the slot number, so sorting touches only this array. */
struct order_key {
	uint64_t ts;
	uint32_t slot;
};

struct order {
	struct order_config cfg;
	order_emit_fn emit;
	void *ctx;
	unsigned char *slots;
	size_t stride;
	struct order_key *ring; /* sorted by ts, equal ones in arrival order, from head */
	uint32_t *free_slots;
	size_t mask, head, n, nfree;
	uint64_t newest;   /* latest timestamp taken in */
	uint64_t released; /* latest timestamp released */
	uint64_t barrier;  /* nothing at or after it leaves by time (order__set_barrier) */
	uint64_t safe;     /* nothing before it can come any more (order__set_safe); 0: unknown */
	int direct;        /* the last order__slot found its record in order: write it at once */
	int any_released;
	struct order_stats st;
};

struct order *order__new(const struct order_config *cfg, order_emit_fn emit, void *ctx)
{
	struct order *o = calloc(1, sizeof(*o));
	size_t i;

	if (!o)
		return NULL;
	o->cfg = *cfg;
	o->emit = emit;
	o->ctx = ctx;
	if (!o->cfg.window_ns)
		o->cfg.capacity = 0;
	else if (o->cfg.capacity < 1)
		o->cfg.capacity = 1;
	if (o->cfg.capacity > (1u << 24))
		o->cfg.capacity = 1u << 24;
	if (!o->cfg.max_record)
		o->cfg.max_record = offsetof(struct pkt_record, snap);
	if (o->cfg.max_record > sizeof(struct pkt_record))
		o->cfg.max_record = sizeof(struct pkt_record);
	o->stride = (offsetof(struct order_slot, rec) + o->cfg.max_record + 7) & ~(size_t)7;
	if (o->cfg.capacity) {
		for (o->mask = 1; o->mask < o->cfg.capacity; o->mask *= 2)
			;
		o->slots = calloc(o->cfg.capacity, o->stride);
		o->ring = calloc(o->mask--, sizeof(*o->ring));
		o->free_slots = calloc(o->cfg.capacity, sizeof(*o->free_slots));
		if (!o->slots || !o->ring || !o->free_slots) {
			order__free(o);
			errno = ENOMEM;
			return NULL;
		}
	}
	for (i = 0; i < o->cfg.capacity; i++)
		o->free_slots[i] = o->cfg.capacity - 1 - i;
	o->nfree = o->cfg.capacity;
	o->barrier = UINT64_MAX;
	return o;
}

void order__free(struct order *o)
{
	if (!o)
		return;
	free(o->slots);
	free(o->ring);
	free(o->free_slots);
	free(o);
}

const struct order_stats *order__stats(const struct order *o)
{
	return &o->st;
}

size_t order__pending(const struct order *o)
{
	return o->n;
}

uint64_t order__newest(const struct order *o)
{
	return o->newest;
}

uint64_t order__window_ns(const struct order *o)
{
	return o->cfg.window_ns;
}

/* Write one record, noting whether it comes after a later one. */
static int release(struct order *o, const struct pkt_record *rec, size_t size,
		   const struct pkt_owner *owner)
{
	int late = o->any_released && rec->ts_ns < o->released;

	if (late) {
		o->st.late++;
		if (o->released - rec->ts_ns > o->st.max_late_ns)
			o->st.max_late_ns = o->released - rec->ts_ns;
	} else {
		o->released = rec->ts_ns;
		o->any_released = 1;
		if (rec->ts_ns > o->newest)
			o->newest = rec->ts_ns; /* one written at once is taken in here */
	}
	return o->emit(o->ctx, rec, size, owner, late);
}

/* Take the oldest record off the head and write it. */
static struct order_slot *slot_at(struct order *o, uint32_t s)
{
	return (struct order_slot *)(o->slots + (size_t)s * o->stride);
}

/* Slots are written a window before they are read, long out of the cache by then: the one
 * ORDER_AHEAD places behind the head is fetched while this one is written out. */
#define ORDER_AHEAD 4

static int pop(struct order *o)
{
	uint32_t s = o->ring[o->head].slot;
	struct order_slot *sl = slot_at(o, s);
	int err;

	if (o->n > ORDER_AHEAD) {
		const char *ahead = (const char *)slot_at(o, o->ring[(o->head + ORDER_AHEAD) &
									o->mask].slot);

		for (size_t at = 0; at < o->stride && at < 256; at += 64)
			__builtin_prefetch(ahead + at);
	}

	o->head = (o->head + 1) & o->mask;
	o->n--;
	err = release(o, &sl->rec, sl->size, sl->has_owner ? &sl->owner : NULL);
	o->free_slots[o->nfree++] = s;
	return err;
}

/* Release, in order, what is stamped before cut and before the barrier. */
static int release_upto(struct order *o, uint64_t cut)
{
	int err = 0, e;

	if (cut > o->barrier)
		cut = o->barrier;
	while (o->n && o->ring[o->head].ts < cut) {
		e = pop(o);
		if (e && !err)
			err = e;
	}
	return err;
}

/* Release what is more than the window older than limit_ns, and what is known to be in order
 * (at or before the safe mark). */
static int release_before(struct order *o, uint64_t limit_ns)
{
	uint64_t cut = limit_ns > o->cfg.window_ns ? limit_ns - o->cfg.window_ns : 0;

	if (o->safe && o->safe >= cut)
		cut = o->safe < UINT64_MAX ? o->safe + 1 : UINT64_MAX; /* ts < cut: at or before */
	return release_upto(o, cut);
}

struct pkt_record *order__slot(struct order *o, uint64_t ts_ns, size_t size, int *err)
{
	*err = 0;
	o->direct = 0;
	/* No window, too late to be sorted in, or larger than a slot: straight out. */
	if (!o->cfg.capacity || (o->any_released && ts_ns < o->released) ||
	    size > o->cfg.max_record)
		return NULL;
	/* Known to be in order: straight out, after what the stage holds that is not newer
	 * (what it then still holds is newer, or waits behind the barrier, which this one is
	 * before). */
	if (o->safe && ts_ns <= o->safe && ts_ns < o->barrier) {
		o->direct = 1;
		*err = o->n ? release_upto(o, ts_ns + 1) : 0;
		return NULL;
	}
	if (!o->nfree) {
		o->st.early++;
		*err = pop(o);
	}
	return &slot_at(o, o->free_slots[o->nfree - 1])->rec;
}

int order__commit(struct order *o, size_t size, const struct pkt_owner *owner)
{
	struct order_slot *sl;
	struct order_key k;
	size_t i;

	o->st.pushed++;
	k.slot = o->free_slots[--o->nfree];
	sl = slot_at(o, k.slot);
	k.ts = sl->rec.ts_ns;
	sl->size = size;
	sl->has_owner = !!owner;
	if (owner)
		sl->owner = *owner;
	/* From the tail back past the later ones: none, as a rule. */
	for (i = o->n++; i && o->ring[(o->head + i - 1) & o->mask].ts > k.ts; i--)
		o->ring[(o->head + i) & o->mask] = o->ring[(o->head + i - 1) & o->mask];
	o->ring[(o->head + i) & o->mask] = k;
	if (o->n > o->st.max_held)
		o->st.max_held = o->n;
	if (k.ts > o->newest)
		o->newest = k.ts;
	return release_before(o, o->newest);
}

int order__push(struct order *o, const struct pkt_record *rec, size_t size,
		const struct pkt_owner *owner)
{
	struct pkt_record *slot;
	int err, e;

	slot = order__slot(o, rec->ts_ns, size, &err);
	if (!slot) {
		o->st.pushed++;
		o->st.direct += o->direct;
		e = release(o, rec, size, owner);
		return err ? err : e;
	}
	memcpy(slot, rec, size);
	e = order__commit(o, size, owner);
	return err ? err : e;
}

int order__expire(struct order *o, uint64_t now_ns)
{
	return release_before(o, now_ns);
}

void order__set_safe(struct order *o, uint64_t ts_ns)
{
	o->safe = ts_ns;
}

void order__set_barrier(struct order *o, uint64_t ts_ns)
{
	o->barrier = ts_ns;
}

int order__flush(struct order *o)
{
	int err = 0, e;

	while (o->n) {
		e = pop(o);
		if (e && !err)
			err = e;
	}
	return err;
}
