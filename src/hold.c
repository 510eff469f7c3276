// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The hold for packets of passive connections: see hold.h. Everything is allocated once. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hold.h"

#define NIL UINT32_MAX

enum conn_state {
	CONN_FREE = 0,
	CONN_HELD,  /* packets wait for a task to take the connection */
	CONN_TAKEN, /* taken: stragglers reserved before the claim go to the same owner */
};

struct slot {
	uint32_t next;
	uint32_t size;
};

struct conn {
	struct pkt_conn key;
	uint32_t hnext;       /* hash chain */
	uint32_t prev, next;  /* age list, oldest first */
	uint32_t tprev, tnext; /* order list: by first_ts, while it holds back later events */
	uint64_t first_ts;     /* the timestamp of its first held record */
	bool in_order_list;
	uint32_t first, last; /* held slots, in arrival order */
	uint8_t state;
	bool has_acceptor;
	bool syn_seen;   /* a SYN of the connection was held */
	bool handshake;  /* and then the client's ACK: completed on the client's side */
	bool was_queued; /* its wait went on: the handshake completed, nobody took it */
	bool begin_seen; /* its flow begin came (held, or let out to the taker) */
	struct pkt_owner owner; /* CONN_TAKEN: the taker; CONN_HELD: the acceptor if any */
	uint64_t deadline_ns;
};

struct hold {
	struct hold_config cfg;
	hold_emit_fn emit;
	void *ctx;
	struct slot *slots;
	unsigned char *records; /* slot i's record at records + i * stride */
	size_t stride;
	struct conn *conns;
	uint32_t *buckets;
	uint32_t nbuckets;
	uint32_t free_slot, free_conn;
	uint32_t oldest, newest;
	uint32_t ts_head, ts_tail; /* the order list */
	size_t held_packets, held_bytes;
	struct hold_stats st;
};

static uint32_t conn_hash(const struct pkt_conn *k)
{
	const unsigned char *p = (const unsigned char *)k;
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < sizeof(*k); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

struct hold *hold__new(const struct hold_config *cfg, hold_emit_fn emit, void *ctx)
{
	struct hold *h = calloc(1, sizeof(*h));
	uint32_t i, n;

	if (!h)
		return NULL;
	h->cfg = *cfg;
	if (h->cfg.max_packets < 1)
		h->cfg.max_packets = 1;
	if (h->cfg.max_packets > (1u << 24))
		h->cfg.max_packets = 1u << 24;
	n = h->cfg.max_packets;
	h->emit = emit;
	h->ctx = ctx;
	for (h->nbuckets = 64; h->nbuckets < 2 * n; h->nbuckets *= 2)
		;
	/* Records without snap[] unless --snaplen asks for it: 65536 slots stay 24 MiB. */
	h->stride = h->cfg.max_record ? h->cfg.max_record :
					offsetof(struct pkt_record, hdr) + PKT_HDR_MAX;
	if (h->stride > sizeof(struct pkt_record))
		h->stride = sizeof(struct pkt_record);
	h->stride = (h->stride + 7) & ~(size_t)7;
	h->slots = calloc(n, sizeof(*h->slots));
	h->records = calloc(n, h->stride);
	h->conns = calloc(n, sizeof(*h->conns));
	h->buckets = malloc(h->nbuckets * sizeof(*h->buckets));
	if (!h->slots || !h->records || !h->conns || !h->buckets) {
		hold__free(h);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < h->nbuckets; i++)
		h->buckets[i] = NIL;
	for (i = 0; i < n; i++) {
		h->slots[i].next = i + 1 < n ? i + 1 : NIL;
		h->conns[i].hnext = i + 1 < n ? i + 1 : NIL;
	}
	h->free_slot = h->free_conn = 0;
	h->oldest = h->newest = h->ts_head = h->ts_tail = NIL;
	return h;
}

void hold__free(struct hold *h)
{
	if (!h)
		return;
	free(h->slots);
	free(h->records);
	free(h->conns);
	free(h->buckets);
	free(h);
}

size_t hold__pending(const struct hold *h)
{
	return h->held_packets;
}

const struct hold_stats *hold__stats(const struct hold *h)
{
	return &h->st;
}

static uint32_t conn_find(struct hold *h, const struct pkt_conn *k)
{
	uint32_t i = h->buckets[conn_hash(k) & (h->nbuckets - 1)];

	while (i != NIL && memcmp(&h->conns[i].key, k, sizeof(*k)))
		i = h->conns[i].hnext;
	return i;
}

static void age_unlink(struct hold *h, uint32_t i)
{
	struct conn *c = &h->conns[i];

	if (c->prev != NIL)
		h->conns[c->prev].next = c->next;
	else
		h->oldest = c->next;
	if (c->next != NIL)
		h->conns[c->next].prev = c->prev;
	else
		h->newest = c->prev;
}

static void age_append(struct hold *h, uint32_t i)
{
	struct conn *c = &h->conns[i];

	c->next = NIL;
	c->prev = h->newest;
	if (h->newest != NIL)
		h->conns[h->newest].next = i;
	else
		h->oldest = i;
	h->newest = i;
}

static void ts_unlink(struct hold *h, uint32_t i)
{
	struct conn *c = &h->conns[i];

	if (!c->in_order_list)
		return;
	if (c->tprev != NIL)
		h->conns[c->tprev].tnext = c->tnext;
	else
		h->ts_head = c->tnext;
	if (c->tnext != NIL)
		h->conns[c->tnext].tprev = c->tprev;
	else
		h->ts_tail = c->tprev;
	c->in_order_list = false;
}

/* Into the order list by first_ts: from the tail back, as records come nearly in order. */
static void ts_insert(struct hold *h, uint32_t i)
{
	struct conn *c = &h->conns[i];
	uint32_t after = h->ts_tail;

	while (after != NIL && h->conns[after].first_ts > c->first_ts)
		after = h->conns[after].tprev;
	c->tprev = after;
	c->tnext = after != NIL ? h->conns[after].tnext : h->ts_head;
	if (c->tprev != NIL)
		h->conns[c->tprev].tnext = i;
	else
		h->ts_head = i;
	if (c->tnext != NIL)
		h->conns[c->tnext].tprev = i;
	else
		h->ts_tail = i;
	c->in_order_list = true;
}

static void conn_free(struct hold *h, uint32_t i)
{
	struct conn *c = &h->conns[i];
	uint32_t *p = &h->buckets[conn_hash(&c->key) & (h->nbuckets - 1)];

	while (*p != i)
		p = &h->conns[*p].hnext;
	*p = c->hnext;
	age_unlink(h, i);
	ts_unlink(h, i);
	c->state = CONN_FREE;
	c->hnext = h->free_conn;
	h->free_conn = i;
}

static const struct pkt_record *slot_record(const struct hold *h, uint32_t s)
{
	return (const void *)(h->records + (size_t)s * h->stride);
}

/* Emit (or count out of scope) one record with owner, or with its own owner when NULL. */
static int emit_one(struct hold *h, const struct pkt_record *rec, size_t size,
		    const struct pkt_owner *owner)
{
	if (!owner)
		owner = &rec->owner;
	/* A flow begin goes on whatever its owner: the reader counts it with the flows. */
	if (!owner->traced && rec->kind != PKT_REC_FLOW) {
		h->st.out_of_scope++;
		return 0;
	}
	return h->emit(h->ctx, rec, size, owner);
}

/* Release every held record of conn i with owner (NULL: the acceptor, else each record's
 * own provisional owner), counting them in *counter. The first emit error is returned. */
static int conn_release(struct hold *h, uint32_t i, const struct pkt_owner *owner,
			uint64_t *counter)
{
	struct conn *c = &h->conns[i];
	uint32_t s, next;
	int err = 0, e;

	if (!owner && c->has_acceptor)
		owner = &c->owner;
	for (s = c->first; s != NIL; s = next) {
		struct slot *sl = &h->slots[s];

		next = sl->next;
		e = emit_one(h, slot_record(h, s), sl->size, owner);
		if (e && !err)
			err = e;
		*counter += slot_record(h, s)->kind != PKT_REC_FLOW;
		h->held_packets--;
		h->held_bytes -= sl->size;
		sl->next = h->free_slot;
		h->free_slot = s;
	}
	c->first = c->last = NIL;
	ts_unlink(h, i);
	return err;
}

static uint32_t conn_new(struct hold *h, const struct pkt_conn *k, int *err)
{
	uint32_t i, b;
	struct conn *c;

	/* No entry free: the oldest connection goes out early. */
	while (h->free_conn == NIL && h->oldest != NIL) {
		i = h->oldest;
		if (h->conns[i].state == CONN_HELD) {
			int e = conn_release(h, i, NULL, &h->st.early);

			if (e && !*err)
				*err = e;
		}
		conn_free(h, i);
	}
	i = h->free_conn;
	c = &h->conns[i];
	h->free_conn = c->hnext;
	memset(c, 0, sizeof(*c));
	c->key = *k;
	c->first = c->last = NIL;
	c->state = CONN_HELD;
	b = conn_hash(k) & (h->nbuckets - 1);
	c->hnext = h->buckets[b];
	h->buckets[b] = i;
	age_append(h, i);
	return i;
}

/* Make room for one more record of size bytes by releasing the oldest held connections,
 * never the connection keep (whose records are still wanted in order). */
static int make_room(struct hold *h, size_t size, uint32_t keep)
{
	uint32_t i, next;
	int err = 0, e;

	for (i = h->oldest; i != NIL &&
			    (h->free_slot == NIL || h->held_bytes + size > h->cfg.max_bytes);
	     i = next) {
		next = h->conns[i].next;
		if (i == keep || h->conns[i].state != CONN_HELD || h->conns[i].first == NIL)
			continue;
		e = conn_release(h, i, NULL, &h->st.early);
		if (e && !err)
			err = e;
		conn_free(h, i);
	}
	/* Still no room: the connection's own records go out early, then this one follows. */
	if (h->free_slot == NIL || h->held_bytes + size > h->cfg.max_bytes) {
		e = conn_release(h, keep, NULL, &h->st.early);
		if (e && !err)
			err = e;
	}
	return err;
}

int hold__packet(struct hold *h, const struct pkt_record *rec, size_t size,
		 const struct pkt_conn *k, enum hold_pkt what)
{
	uint32_t i = conn_find(h, k), s;
	struct conn *c;
	/* The stats count packets: a flow begin is counted with the flows. */
	int err = 0, e, is_syn = what == HOLD_PKT_SYN, pkt = rec->kind != PKT_REC_FLOW;
	/* A new connection on the same addresses: its SYN says so, or with flow events alone
	 * (no packet held) a second begin. A taken connection's first begin is its own: the
	 * claim came first through another CPU's ring, or a Fast Open server used the socket
	 * before the handshake completed. */
	int new_begin = what == HOLD_PKT_ESTABLISHED && i != NIL && h->conns[i].begin_seen;

	h->st.held += pkt;
	if (i != NIL && h->conns[i].state == CONN_TAKEN && !is_syn && !new_begin) {
		/* Reserved before the claim reached the ring: it belongs to the taker too. */
		h->st.taken += pkt;
		h->conns[i].begin_seen |= what == HOLD_PKT_ESTABLISHED;
		return emit_one(h, rec, size, &h->conns[i].owner);
	}
	if (i != NIL && (h->conns[i].state == CONN_TAKEN || new_begin)) {
		/* A new connection (a held SYN again is the same one's, resent): what was kept of
		 * the old one is history. */
		if (h->conns[i].state == CONN_HELD)
			err = conn_release(h, i, NULL, &h->st.waited_out);
		conn_free(h, i);
		i = NIL;
	}
	if (i == NIL) {
		i = conn_new(h, k, &err);
		h->conns[i].deadline_ns = rec->ts_ns + h->cfg.wait_ns;
	}
	if (is_syn)
		h->conns[i].syn_seen = true;
	else if ((what == HOLD_PKT_ACK_IN && h->conns[i].syn_seen) || what == HOLD_PKT_ESTABLISHED)
		h->conns[i].handshake = true;
	h->conns[i].begin_seen |= what == HOLD_PKT_ESTABLISHED;
	c = &h->conns[i];
	if (h->free_slot == NIL || h->held_bytes + size > h->cfg.max_bytes) {
		e = make_room(h, size, i);
		if (e && !err)
			err = e;
	}
	if (h->free_slot == NIL || h->held_bytes + size > h->cfg.max_bytes || size > h->stride) {
		h->st.early += pkt;
		e = emit_one(h, rec, size, c->has_acceptor ? &c->owner : NULL);
		return err ? err : e;
	}
	s = h->free_slot;
	h->free_slot = h->slots[s].next;
	memcpy(h->records + (size_t)s * h->stride, rec, size);
	h->slots[s].size = size;
	h->slots[s].next = NIL;
	if (c->last != NIL) {
		h->slots[c->last].next = s;
	} else {
		c->first = s;
		c->first_ts = rec->ts_ns;
		ts_insert(h, i);
	}
	c->last = s;
	h->held_packets++;
	h->held_bytes += size;
	/* A reset ends the wait: nobody will take this connection. */
	if (what == HOLD_PKT_RST) {
		e = conn_release(h, i, NULL, &h->st.waited_out);
		if (e && !err)
			err = e;
		conn_free(h, i);
	}
	return err;
}

int hold__claim(struct hold *h, const struct pkt_record *rec, size_t size)
{
	const struct pkt_conn *k = (const void *)rec->hdr;
	uint32_t i;
	int err = 0;

	if (size < offsetof(struct pkt_record, hdr) + sizeof(*k))
		return -EINVAL;
	i = conn_find(h, k);
	switch (rec->flags) {
	case PKT_CLAIM_ACCEPT:
		if (i != NIL && h->conns[i].state == CONN_TAKEN)
			return 0;
		if (i == NIL)
			i = conn_new(h, k, &err);
		h->conns[i].has_acceptor = true;
		h->conns[i].owner = rec->owner;
		/* Accepted: wait for its first use from now on. */
		h->conns[i].deadline_ns = rec->ts_ns + h->cfg.wait_ns;
		age_unlink(h, i);
		age_append(h, i);
		return err;
	case PKT_CLAIM_USE:
		if (i == NIL)
			i = conn_new(h, k, &err);
		else if (h->conns[i].state == CONN_HELD)
			err = conn_release(h, i, &rec->owner, &h->st.taken);
		h->conns[i].state = CONN_TAKEN;
		h->conns[i].owner = rec->owner;
		h->conns[i].deadline_ns = rec->ts_ns + h->cfg.wait_ns;
		age_unlink(h, i);
		age_append(h, i);
		return err;
	case PKT_CLAIM_CLOSED:
		if (i == NIL)
			return 0;
		if (h->conns[i].state == CONN_HELD)
			err = conn_release(h, i, NULL, &h->st.waited_out);
		conn_free(h, i);
		return err;
	default:
		return -EINVAL;
	}
}

/* Whether held connection i, its wait over, should wait on: its handshake completed and no
 * acceptor named it (accept() does), so it waits for accept(); not past HOLD_QUEUED_MAX_NS. */
static bool still_queued(struct hold *h, uint32_t i, uint64_t now_ns)
{
	const struct conn *c = &h->conns[i];

	if (!h->cfg.wait_ns || now_ns == UINT64_MAX || c->has_acceptor || !c->handshake)
		return false;
	/* A request the kernel dropped without a word (TCP_DEFER_ACCEPT's end, the SYN-ACK's
	 * retries run out) leaves nothing to see: after the kernel's own limit the wait ends.
	 * Nothing held (let out early for room): nothing to wait for either. */
	return c->first != NIL && now_ns - c->first_ts <= HOLD_QUEUED_MAX_NS;
}

int hold__expire(struct hold *h, uint64_t now_ns)
{
	int err = 0, e;
	uint32_t i;

	while ((i = h->oldest) != NIL && h->conns[i].deadline_ns <= now_ns) {
		if (h->conns[i].state == CONN_HELD && still_queued(h, i, now_ns)) {
			/* Not accepted yet: the server is slow, not gone. Wait on, at the end. */
			if (!h->conns[i].was_queued)
				h->st.queued++;
			h->conns[i].was_queued = true;
			h->conns[i].deadline_ns = now_ns + h->cfg.wait_ns;
			age_unlink(h, i);
			age_append(h, i);
			continue;
		}
		if (h->conns[i].state == CONN_HELD) {
			e = conn_release(h, i, NULL, &h->st.waited_out);
			if (e && !err)
				err = e;
		}
		conn_free(h, i);
	}
	return err;
}

uint64_t hold__order_barrier(struct hold *h, uint64_t now_ns, uint64_t wait_ns)
{
	/* Waited its time: out of the list for good, so each connection is passed over once. */
	while (h->ts_head != NIL && h->conns[h->ts_head].first_ts + wait_ns < now_ns)
		ts_unlink(h, h->ts_head);
	return h->ts_head != NIL ? h->conns[h->ts_head].first_ts : UINT64_MAX;
}

int hold__flush(struct hold *h)
{
	return hold__expire(h, UINT64_MAX);
}
