// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Owner definitions by id: see owners.h. Open addressing with linear probing, ids as keys (0
 * marks a free slot; the kernel side never hands out 0). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "owners.h"

struct owner_slot {
	uint64_t id;
	struct owner_entry e;
};

struct owner_gen {
	struct owner_slot *slots;
	size_t n;
};

struct owners {
	struct owner_gen gen[2]; /* gen[cur]: the current generation */
	size_t mask, max_n;      /* slots - 1; definitions a generation takes (half its slots) */
	int cur;
};

void owners__free(struct owners *t)
{
	if (!t)
		return;
	free(t->gen[0].slots);
	free(t->gen[1].slots);
	free(t);
}

struct owners *owners__new(size_t per_gen)
{
	struct owners *t = calloc(1, sizeof(*t));
	size_t slots = 16;

	if (!t)
		return NULL;
	while (slots < 2 * per_gen)
		slots *= 2;
	t->mask = slots - 1;
	t->max_n = slots / 2;
	for (int g = 0; g < 2; g++) {
		t->gen[g].slots = calloc(slots, sizeof(struct owner_slot));
		if (!t->gen[g].slots) {
			owners__free(t);
			errno = ENOMEM;
			return NULL;
		}
	}
	return t;
}

/* Fibonacci hashing: ids are consecutive, the product spreads them. */
static size_t slot_of(const struct owners *t, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 17) & t->mask;
}

static struct owner_slot *find(struct owners *t, struct owner_gen *g, uint64_t id)
{
	for (size_t i = slot_of(t, id);; i = (i + 1) & t->mask) {
		if (g->slots[i].id == id)
			return &g->slots[i];
		if (!g->slots[i].id)
			return NULL;
	}
}

int owners__put(struct owners *t, uint64_t id, const struct pkt_owner *o, const char *ifname)
{
	struct owner_gen *g = &t->gen[t->cur];
	size_t i;

	if (!id)
		return -EINVAL;
	for (i = slot_of(t, id); g->slots[i].id && g->slots[i].id != id; i = (i + 1) & t->mask)
		;
	if (!g->slots[i].id) {
		if (g->n >= t->max_n)
			return -ENOSPC;
		g->n++;
	}
	g->slots[i].id = id;
	g->slots[i].e.owner = *o;
	memcpy(g->slots[i].e.ifname, ifname, PKT_IFNAME_LEN);
	return 0;
}

const struct owner_entry *owners__get(struct owners *t, uint64_t id)
{
	struct owner_slot *s;

	if (!id)
		return NULL;
	s = find(t, &t->gen[t->cur], id);
	if (!s)
		s = find(t, &t->gen[!t->cur], id);
	return s ? &s->e : NULL;
}

size_t owners__current(const struct owners *t)
{
	return t->gen[t->cur].n;
}

void owners__rotate(struct owners *t)
{
	struct owner_gen *old = &t->gen[!t->cur];

	memset(old->slots, 0, (t->mask + 1) * sizeof(*old->slots));
	old->n = 0;
	t->cur = !t->cur;
}
