/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The owner definitions the kernel side sent (struct pkt_owner_def), by id, for the packet
 * records that name them. Two generations, allocated once: new ones go into the current one;
 * a rotation drops the older and starts a new current one. The caller decides when a rotation
 * is safe (no record in the ring buffers still names an id of the generation it drops).
 */
#ifndef PKTRACE_OWNERS_H
#define PKTRACE_OWNERS_H

#include <stddef.h>
#include <stdint.h>

#include "pktrace.h"

struct owners;

struct owner_entry {
	struct pkt_owner owner;
	char ifname[PKT_IFNAME_LEN];
};

/* Room for at least per_gen definitions in each generation (more: see owners__put). */
struct owners *owners__new(size_t per_gen);
/* Keep a definition in the current generation (the same id again replaces it). -ENOSPC: the
 * current generation is full (the caller rotates, then puts again). */
int owners__put(struct owners *t, uint64_t id, const struct pkt_owner *o, const char *ifname);
/* The definition of id, NULL: none held. */
const struct owner_entry *owners__get(struct owners *t, uint64_t id);
/* Definitions in the current generation. */
size_t owners__current(const struct owners *t);
/* Drop the older generation; the current one becomes the older. */
void owners__rotate(struct owners *t);
void owners__free(struct owners *t);

#endif /* PKTRACE_OWNERS_H */
