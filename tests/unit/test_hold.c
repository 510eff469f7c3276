// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The hold: packets of passive connections wait for the task that takes the connection. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hold.h"

#define WAIT 1000u
#define SMALL (offsetof(struct pkt_record, hdr) + PKT_HDR_SMALL)
#define FULL (offsetof(struct pkt_record, hdr) + PKT_HDR_MAX)
#define CLAIM_SIZE (offsetof(struct pkt_record, hdr) + sizeof(struct pkt_conn))
#define MAX_OUT 256
#define ACK_IN 2 /* packet()'s syn: the client's ACK that completes the handshake */

/* What the emit callback saw. */
struct out {
	uint64_t ts;
	uint32_t id; /* pkt_len of the record: the test's sequence number */
	uint32_t pid; /* owner given to emit */
	uint32_t rec_pid; /* the record's own owner */
	size_t size;
	int intact; /* record bytes equal to those put in */
};

static struct out outs[MAX_OUT];
static size_t n_out;
static int emit_err;      /* returned by emit when non-zero */
static size_t emit_calls; /* emit calls, failed ones included */
static struct pkt_record sent[MAX_OUT]; /* records by id, to compare the bytes */
static size_t sent_size[MAX_OUT];
static struct hold *h;

static int emit(void *ctx, const struct pkt_record *rec, size_t size,
		const struct pkt_owner *owner)
{
	struct out *o;

	assert_ptr_equal(ctx, &outs);
	emit_calls++;
	if (emit_err)
		return emit_err;
	assert_true(n_out < MAX_OUT);
	o = &outs[n_out++];
	o->ts = rec->ts_ns;
	o->id = rec->pkt_len;
	o->pid = owner->pid;
	o->rec_pid = rec->owner.pid;
	o->size = size;
	o->intact = rec->pkt_len < MAX_OUT && !memcmp(rec, &sent[rec->pkt_len], size);
	return 0;
}

static void make(size_t max_packets, size_t max_bytes)
{
	struct hold_config cfg = {
		.wait_ns = WAIT,
		.max_packets = max_packets,
		.max_bytes = max_bytes,
	};

	hold__free(h);
	h = hold__new(&cfg, emit, &outs);
	assert_non_null(h);
}

static int setup(void **state)
{
	memset(outs, 0, sizeof(outs));
	memset(sent, 0, sizeof(sent));
	memset(sent_size, 0, sizeof(sent_size));
	n_out = 0;
	emit_err = 0;
	emit_calls = 0;
	h = NULL;
	make(64, 1 << 20);
	return 0;
}

static int teardown(void **state)
{
	hold__free(h);
	h = NULL;
	return 0;
}

static struct pkt_owner owner(uint32_t pid, int traced)
{
	struct pkt_owner o = { .pid = pid, .tid = pid, .uid = 1000, .traced = (uint8_t)traced };

	snprintf(o.comm, sizeof(o.comm), "task%u", pid);
	return o;
}

static struct pkt_conn conn(uint32_t netns, uint16_t lport, uint16_t rport)
{
	struct pkt_conn c = { .netns = netns, .family = 4, .lport = lport, .rport = rport };

	c.laddr[0] = 10, c.laddr[3] = 1;
	c.raddr[0] = 10, c.raddr[3] = 2;
	return c;
}

/* Put record id (its pkt_len) of connection c on hold, with ts and provisional owner o. */
static int packet_own(const struct pkt_conn *c, uint32_t id, uint64_t ts,
		      const struct pkt_owner *o, int syn, int rst, size_t size)
{
	struct pkt_record *r;

	assert_true(id < MAX_OUT);
	r = &sent[id];
	memset(r, 0, sizeof(*r));
	sent_size[id] = size;
	r->ts_ns = ts;
	r->owner = *o;
	r->pkt_len = id;
	r->ifindex = 2;
	r->direction = PKT_INGRESS;
	r->l3_proto = 4;
	r->hdr_len = 40;
	r->kind = PKT_REC_PACKET;
	r->flags = PKT_F_HELD;
	r->netns = c->netns;
	memset(r->hdr, (int)(0x40 + id), size - offsetof(struct pkt_record, hdr));
	return hold__packet(h, r, size, c, rst ? HOLD_PKT_RST : syn == 1 ? HOLD_PKT_SYN :
					 syn == ACK_IN ? HOLD_PKT_ACK_IN : HOLD_PKT_OTHER);
}

static int packet_sz(const struct pkt_conn *c, uint32_t id, uint64_t ts, uint32_t pid,
		     int syn, int rst, size_t size)
{
	struct pkt_owner o = owner(pid, 1);

	return packet_own(c, id, ts, &o, syn, rst, size);
}

static int packet(const struct pkt_conn *c, uint32_t id, uint64_t ts, uint32_t pid, int syn)
{
	return packet_sz(c, id, ts, pid, syn, 0, SMALL);
}

static int claim_raw(const struct pkt_conn *c, uint8_t how, uint64_t ts,
		     const struct pkt_owner *o, size_t size)
{
	struct pkt_record r;

	memset(&r, 0, sizeof(r));
	r.ts_ns = ts;
	r.owner = *o;
	r.kind = PKT_REC_CLAIM;
	r.flags = how;
	r.netns = c->netns;
	r.hdr_len = sizeof(*c);
	memcpy(r.hdr, c, sizeof(*c));
	return hold__claim(h, &r, size);
}

static int claim(const struct pkt_conn *c, uint8_t how, uint64_t ts, uint32_t pid)
{
	struct pkt_owner o = owner(pid, 1);

	return claim_raw(c, how, ts, &o, CLAIM_SIZE);
}

/* Emitted record n is record id, given owner pid, with its own ts, size and bytes. */
static void expect_out(size_t n, uint32_t id, uint32_t pid)
{
	if (n >= n_out)
		fail_msg("output %zu missing (%zu emitted)", n, n_out);
	if (outs[n].id != id || outs[n].pid != pid)
		fail_msg("output %zu: record %u owner %u, want record %u owner %u", n,
			 outs[n].id, outs[n].pid, id, pid);
	assert_int_equal(outs[n].ts, sent[id].ts_ns);
	assert_int_equal(outs[n].size, sent_size[id]);
	assert_true(outs[n].intact);
}

static const struct hold_stats *st(void)
{
	return hold__stats(h);
}

/* Records still held, by the stats: put on hold and not yet released. */
static uint64_t still_held(void)
{
	const struct hold_stats *s = st();

	return s->held - s->taken - s->waited_out - s->early;
}

/* ---- taken by use ---- */

static void test_use_releases_in_order(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 20, 100, 0), 0);
	assert_int_equal(packet(&c, 3, 30, 100, 0), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(st()->held, 3);
	assert_int_equal(still_held(), 3);

	assert_int_equal(claim(&c, PKT_CLAIM_USE, 40, 200), 0);
	assert_int_equal(n_out, 3);
	expect_out(0, 1, 200);
	expect_out(1, 2, 200);
	expect_out(2, 3, 200);
	/* The record itself is untouched: its own (provisional) owner is still there. */
	assert_int_equal(outs[0].rec_pid, 100);
	assert_int_equal(st()->taken, 3);
	assert_int_equal(st()->waited_out, 0);
	assert_int_equal(st()->early, 0);
	assert_int_equal(st()->out_of_scope, 0);

	/* Nothing left to release. */
	assert_int_equal(hold__flush(h), 0);
	assert_int_equal(n_out, 3);
}

static void test_use_keeps_record_size(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet_sz(&c, 1, 10, 100, 1, 0, FULL), 0);
	assert_int_equal(packet_sz(&c, 2, 20, 100, 0, 0, SMALL), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 30, 200), 0);
	assert_int_equal(n_out, 2);
	assert_int_equal(outs[0].size, FULL);
	assert_int_equal(outs[1].size, SMALL);
	assert_true(outs[0].intact);
	assert_true(outs[1].intact);
}

static void test_straggler_after_use(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 20, 200), 0);
	assert_int_equal(n_out, 1);
	/* Reserved before the claim: provisional owner 100, but the taker gets it at once. */
	assert_int_equal(packet(&c, 2, 15, 100, 0), 0);
	assert_int_equal(n_out, 2);
	expect_out(1, 2, 200);
	assert_int_equal(packet_sz(&c, 3, 25, 100, 0, 1, SMALL), 0);
	assert_int_equal(n_out, 3);
	expect_out(2, 3, 200);
	assert_int_equal(st()->taken, 3);
	assert_int_equal(st()->held, 3);
	assert_int_equal(still_held(), 0);
}

static void test_use_before_packets(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	/* The claim reached the ring before a packet reserved earlier. */
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 20, 200), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(packet(&c, 1, 10, 100, 0), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 200);
}

static void test_new_syn_after_use(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 20, 200), 0);
	assert_int_equal(n_out, 1);

	/* Same addresses and ports, a pure SYN: a new connection, held again. */
	assert_int_equal(packet(&c, 2, 30, 100, 1), 0);
	assert_int_equal(packet(&c, 3, 40, 100, 0), 0);
	assert_int_equal(n_out, 1);
	assert_int_equal(still_held(), 2);

	assert_int_equal(claim(&c, PKT_CLAIM_USE, 50, 300), 0);
	assert_int_equal(n_out, 3);
	expect_out(1, 2, 300);
	expect_out(2, 3, 300);
}

/* A flow begin (PKT_FLOW_HELD) of connection c, record id, provisional owner pid (traced). */
static int begin(const struct pkt_conn *c, uint32_t id, uint64_t ts, uint32_t pid)
{
	struct pkt_record *r;
	size_t size = offsetof(struct pkt_record, hdr) + sizeof(struct pkt_flow);

	assert_true(id < MAX_OUT);
	r = &sent[id];
	memset(r, 0, sizeof(*r));
	sent_size[id] = size;
	r->ts_ns = ts;
	r->owner = owner(pid, 1);
	r->pkt_len = id;
	r->kind = PKT_REC_FLOW;
	r->flags = PKT_FLOW_PASSIVE | PKT_FLOW_HELD;
	r->netns = c->netns;
	r->hdr_len = sizeof(struct pkt_flow);
	memcpy(r->hdr, c, sizeof(*c));
	return hold__packet(h, r, size, c, HOLD_PKT_ESTABLISHED);
}

/* Flow events alone (no packet held): each connection on the same addresses and ports gets its
 * own taker, a second begin after a claim being a new connection; the stats count packets. */
static void test_flow_begins_each_their_taker(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	(void)state;
	assert_int_equal(begin(&c, 1, 10, 100), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 20, 200), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 200);

	/* The port used again: held for its own taker, not the last one's. */
	assert_int_equal(begin(&c, 2, 30, 100), 0);
	assert_int_equal(n_out, 1);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 40, 300), 0);
	assert_int_equal(n_out, 2);
	expect_out(1, 2, 300);
	assert_int_equal(st()->held, 0);
	assert_int_equal(st()->taken, 0);
}

/* A claim seen before the begin (another CPU's ring, or a Fast Open server using the socket
 * before the handshake completed): the begin is that connection's, let out at once. */
static void test_flow_begin_after_its_claim(void **state)
{
	struct pkt_conn c = conn(1, 80, 40001);

	(void)state;
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 20, 200), 0);
	assert_int_equal(begin(&c, 1, 15, 100), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 200);
}

/* A begin held, its connection never taken but a new one began on the same tuple: the old
 * begin goes out with its provisional owner, the new one waits for its taker. */
static void test_flow_begin_untaken_then_new(void **state)
{
	struct pkt_conn c = conn(1, 80, 40002);

	(void)state;
	assert_int_equal(begin(&c, 1, 10, 100), 0);
	assert_int_equal(begin(&c, 2, 30, 100), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 100);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 40, 300), 0);
	assert_int_equal(n_out, 2);
	expect_out(1, 2, 300);
}

static void test_second_use_changes_owner(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 20, 200), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 30, 300), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 200);
	assert_int_equal(packet(&c, 2, 25, 100, 0), 0);
	expect_out(1, 2, 300);
}

/* ---- accepted, or not, and the wait ---- */

static void test_accept_then_expire(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 20, 100, 0), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_ACCEPT, 500, 150), 0);
	assert_int_equal(n_out, 0);
	/* The first record's deadline (10 + WAIT) has passed, but accept restarted the wait. */
	assert_int_equal(hold__expire(h, 10 + WAIT), 0);
	assert_int_equal(hold__expire(h, 500 + WAIT - 1), 0);
	assert_int_equal(n_out, 0);
	/* Held after the accept: goes to the acceptor too. */
	assert_int_equal(packet(&c, 3, 600, 100, 0), 0);
	assert_int_equal(hold__expire(h, 500 + WAIT), 0);
	assert_int_equal(n_out, 3);
	expect_out(0, 1, 150);
	expect_out(1, 2, 150);
	expect_out(2, 3, 150);
	assert_int_equal(st()->waited_out, 3);
	assert_int_equal(st()->taken, 0);
}

/* ---- a completed handshake nobody took yet: queued for accept(), it waits on ---- */

static void test_queued_waits_for_the_taker(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000), other = conn(1, 80, 40001);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 20, 100, 0), 0); /* the SYN-ACK */
	assert_int_equal(packet(&c, 3, 30, 100, ACK_IN), 0);
	assert_int_equal(packet(&c, 4, 40, 100, 0), 0); /* the request */
	/* Its wait is over, but the handshake completed and nobody took it: it waits on. */
	assert_int_equal(hold__expire(h, 10 + WAIT), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(st()->queued, 1);
	/* A later connection's wait ends before the one that went on (the SYN-ACK only). */
	assert_int_equal(packet(&other, 5, 30 + WAIT, 100, 1), 0);
	assert_int_equal(hold__expire(h, 30 + 2 * WAIT), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 5, 100);
	/* Again and again, counted once. */
	assert_int_equal(hold__expire(h, 10 + 5 * WAIT), 0);
	assert_int_equal(st()->queued, 1);
	assert_int_equal(n_out, 1);
	/* Taken at last: its records go to the taker. */
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 6 * WAIT, 150), 0);
	assert_int_equal(n_out, 5);
	expect_out(1, 1, 150);
	expect_out(4, 4, 150);
	assert_int_equal(st()->taken, 4);
	assert_int_equal(st()->waited_out, 1);
}

static void test_queued_needs_the_handshake(void **state)
{
	struct pkt_conn flood = conn(1, 80, 40000), stray = conn(1, 80, 40001);

	/* A SYN and its SYN-ACKs, never acknowledged (a SYN flood): out at the deadline. */
	assert_int_equal(packet(&flood, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&flood, 2, 11, 100, 0), 0);
	/* An ACK with no SYN before it (a scan's, or one for a connection held no more). */
	assert_int_equal(packet(&stray, 3, 12, 100, ACK_IN), 0);
	assert_int_equal(hold__expire(h, 12 + WAIT), 0);
	assert_int_equal(n_out, 3);
	assert_int_equal(st()->waited_out, 3);
	assert_int_equal(st()->queued, 0);
}

static void test_queued_at_most(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 30, 100, ACK_IN), 0);
	assert_int_equal(hold__expire(h, 10 + HOLD_QUEUED_MAX_NS), 0);
	assert_int_equal(n_out, 0);
	/* A request the kernel dropped without a word: past the limit, the wait ends. */
	assert_int_equal(hold__expire(h, 10 + HOLD_QUEUED_MAX_NS + WAIT), 0);
	assert_int_equal(n_out, 2);
	expect_out(0, 1, 100);
	assert_int_equal(st()->waited_out, 2);
	assert_int_equal(st()->queued, 1);
}

static void test_queued_nothing_held(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000), d = conn(1, 80, 40001);

	make(2, 1 << 20);
	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 11, 100, ACK_IN), 0);
	/* No room: c's records go out early, and its entry has nothing left to wait for. */
	assert_int_equal(packet(&d, 3, 12, 100, 1), 0);
	assert_int_equal(n_out, 2);
	assert_int_equal(st()->early, 2);
	assert_int_equal(hold__expire(h, 11 + WAIT), 0);
	assert_int_equal(hold__expire(h, 12 + WAIT), 0);
	assert_int_equal(n_out, 3);
	assert_int_equal(st()->queued, 0);
	assert_int_equal(hold__pending(h), 0);
}

static void test_queued_not_when_named(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000), d = conn(1, 80, 40001);

	/* Named by accept(): out of the queue, its wait ends as before, with the acceptor. */
	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 15, 100, ACK_IN), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_ACCEPT, 20, 150), 0);
	assert_int_equal(hold__expire(h, 20 + WAIT), 0);
	expect_out(0, 1, 150);
	expect_out(1, 2, 150);
	/* At exit everything goes, queued or not. */
	assert_int_equal(packet(&d, 3, 30, 100, 1), 0);
	assert_int_equal(packet(&d, 4, 31, 100, ACK_IN), 0);
	assert_int_equal(hold__flush(h), 0);
	expect_out(2, 3, 100);
	assert_int_equal(st()->queued, 0);
	/* --hold-time 0: nothing waits, so nothing waits on. */
	{
		struct hold_config cfg = {.max_packets = 4, .max_bytes = 1 << 20};

		hold__free(h);
		h = hold__new(&cfg, emit, &outs);
		assert_non_null(h);
		assert_int_equal(packet(&c, 5, 40, 100, 1), 0);
		assert_int_equal(packet(&c, 6, 41, 100, ACK_IN), 0);
		assert_int_equal(hold__expire(h, 41), 0);
		expect_out(5, 6, 100);
	}
}

static void test_accept_then_use(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_ACCEPT, 20, 150), 0);
	assert_int_equal(packet(&c, 2, 30, 100, 0), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 40, 200), 0);
	assert_int_equal(n_out, 2);
	expect_out(0, 1, 200);
	expect_out(1, 2, 200);
	assert_int_equal(st()->taken, 2);
	/* An accept reported after the use changes nothing. */
	assert_int_equal(claim(&c, PKT_CLAIM_ACCEPT, 50, 150), 0);
	assert_int_equal(packet(&c, 3, 60, 100, 0), 0);
	expect_out(2, 3, 200);
}

static void test_accept_before_packets(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(claim(&c, PKT_CLAIM_ACCEPT, 5, 150), 0);
	assert_int_equal(packet(&c, 1, 10, 100, 0), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(hold__expire(h, 5 + WAIT), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 150);
}

static void test_no_accept_expire_own_owner(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 20, 101, 0), 0);
	assert_int_equal(hold__expire(h, 10 + WAIT - 1), 0);
	assert_int_equal(n_out, 0);
	/* The deadline runs from the first record. */
	assert_int_equal(hold__expire(h, 10 + WAIT), 0);
	assert_int_equal(n_out, 2);
	expect_out(0, 1, 100);
	expect_out(1, 2, 101);
	assert_int_equal(st()->waited_out, 2);
	assert_int_equal(still_held(), 0);
}

static void test_closed_with_acceptor(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_ACCEPT, 20, 150), 0);
	assert_int_equal(packet(&c, 2, 30, 100, 0), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_CLOSED, 40, 999), 0);
	assert_int_equal(n_out, 2);
	expect_out(0, 1, 150);
	expect_out(1, 2, 150);
	assert_int_equal(st()->waited_out, 2);
	/* Gone: a later packet of the same addresses is held anew, without the acceptor. */
	assert_int_equal(packet(&c, 3, 50, 100, 0), 0);
	assert_int_equal(n_out, 2);
	assert_int_equal(still_held(), 1);
	assert_int_equal(hold__expire(h, 20 + WAIT), 0);
	assert_int_equal(n_out, 2);
	assert_int_equal(hold__expire(h, 50 + WAIT), 0);
	assert_int_equal(n_out, 3);
	expect_out(2, 3, 100);
}

static void test_closed_after_use_forgets(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 20, 200), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_CLOSED, 30, 999), 0);
	assert_int_equal(n_out, 1);
	/* No taken entry any more: the next packet on these addresses waits on its own. */
	assert_int_equal(packet(&c, 2, 40, 100, 0), 0);
	assert_int_equal(n_out, 1);
	assert_int_equal(still_held(), 1);
	assert_int_equal(hold__flush(h), 0);
	expect_out(1, 2, 100);
}

static void test_closed_without_acceptor(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 20, 101, 0), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_CLOSED, 30, 999), 0);
	assert_int_equal(n_out, 2);
	expect_out(0, 1, 100);
	expect_out(1, 2, 101);
	assert_int_equal(st()->waited_out, 2);
	/* Closed for a connection the hold does not know: nothing to do. */
	c = conn(1, 81, 40000);
	assert_int_equal(claim(&c, PKT_CLAIM_CLOSED, 40, 999), 0);
	assert_int_equal(n_out, 2);
}

static void test_rst_releases(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 20, 100, 0), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(packet_sz(&c, 3, 30, 100, 0, 1, SMALL), 0);
	assert_int_equal(n_out, 3);
	expect_out(0, 1, 100);
	expect_out(1, 2, 100);
	expect_out(2, 3, 100);
	assert_int_equal(st()->waited_out, 3);
	assert_int_equal(still_held(), 0);
}

static void test_rst_with_acceptor(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_ACCEPT, 20, 150), 0);
	assert_int_equal(packet_sz(&c, 2, 30, 100, 0, 1, SMALL), 0);
	assert_int_equal(n_out, 2);
	expect_out(0, 1, 150);
	expect_out(1, 2, 150);
}

/* ---- scope ---- */

static void test_out_of_scope_taker(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);
	struct pkt_owner untraced = owner(200, 0);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&c, 2, 20, 100, 0), 0);
	assert_int_equal(claim_raw(&c, PKT_CLAIM_USE, 30, &untraced, CLAIM_SIZE), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(emit_calls, 0);
	assert_int_equal(st()->out_of_scope, 2);
	assert_int_equal(st()->taken, 2);
	/* A straggler goes the same way. */
	assert_int_equal(packet(&c, 3, 40, 100, 0), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(st()->out_of_scope, 3);
	assert_int_equal(still_held(), 0);
}

static void test_out_of_scope_own_owner(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);
	struct pkt_owner untraced = owner(100, 0);

	/* No accept: each record goes to its own owner, which may be out of the scope. */
	assert_int_equal(packet_own(&c, 1, 10, &untraced, 1, 0, SMALL), 0);
	assert_int_equal(packet(&c, 2, 20, 101, 0), 0);
	assert_int_equal(hold__expire(h, 10 + WAIT), 0);
	assert_int_equal(n_out, 1);
	assert_int_equal(emit_calls, 1);
	expect_out(0, 2, 101);
	assert_int_equal(st()->out_of_scope, 1);
	assert_int_equal(st()->waited_out, 2);
}

static void test_out_of_scope_acceptor(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);
	struct pkt_owner untraced = owner(150, 0);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(claim_raw(&c, PKT_CLAIM_ACCEPT, 20, &untraced, CLAIM_SIZE), 0);
	assert_int_equal(packet(&c, 2, 30, 100, 0), 0);
	assert_int_equal(claim(&c, PKT_CLAIM_CLOSED, 40, 999), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(st()->out_of_scope, 2);
	assert_int_equal(st()->waited_out, 2);
}

/* ---- bounds ---- */

static void test_overflow_packets(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001), c = conn(1, 80, 40002);

	make(4, 1 << 20);
	assert_int_equal(packet(&a, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&a, 2, 20, 100, 0), 0);
	assert_int_equal(packet(&b, 3, 30, 101, 1), 0);
	assert_int_equal(packet(&c, 4, 40, 102, 1), 0);
	assert_int_equal(n_out, 0);
	/* The fifth record: the oldest connection (a) goes out early, whole and in order. */
	assert_int_equal(packet(&c, 5, 50, 102, 0), 0);
	assert_int_equal(n_out, 2);
	expect_out(0, 1, 100);
	expect_out(1, 2, 100);
	assert_int_equal(st()->early, 2);
	assert_int_equal(still_held(), 3);
	assert_int_equal(n_out + st()->out_of_scope + still_held(), st()->held);

	/* The others are still held, and still go to their taker. */
	assert_int_equal(claim(&b, PKT_CLAIM_USE, 60, 201), 0);
	expect_out(2, 3, 201);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 70, 202), 0);
	expect_out(3, 4, 202);
	expect_out(4, 5, 202);
	assert_int_equal(n_out, 5);
	assert_int_equal(n_out + st()->out_of_scope, st()->held);
}

static void test_overflow_acceptor_is_provisional_owner(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001);

	make(2, 1 << 20);
	assert_int_equal(packet(&a, 1, 10, 100, 1), 0);
	assert_int_equal(claim(&a, PKT_CLAIM_ACCEPT, 15, 150), 0);
	assert_int_equal(packet(&b, 2, 20, 101, 1), 0);
	assert_int_equal(packet(&b, 3, 30, 101, 0), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 150);
	assert_int_equal(st()->early, 1);
}

static void test_overflow_one_connection(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000);
	uint32_t i;

	make(3, 1 << 20);
	for (i = 1; i <= 5; i++)
		assert_int_equal(packet(&a, i, i * 10, 100, i == 1), 0);
	/* Order kept: whatever went out early went out first and in order. */
	assert_int_equal(st()->held, 5);
	assert_true(st()->early >= 2);
	assert_int_equal(n_out, st()->early);
	for (i = 0; i < n_out; i++)
		expect_out(i, i + 1, 100);
	assert_int_equal(n_out + st()->out_of_scope + still_held(), st()->held);
	assert_true(still_held() <= 3);
	assert_int_equal(claim(&a, PKT_CLAIM_USE, 100, 200), 0);
	assert_int_equal(n_out, 5);
	for (i = st()->early; i < 5; i++)
		expect_out(i, i + 1, 200);
}

static void test_overflow_bytes(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001), c = conn(1, 80, 40002);

	/* Room for many records by count, for two full-size ones (or a full and a small) by bytes. */
	make(64, 2 * FULL + SMALL / 2);
	assert_int_equal(packet_sz(&a, 1, 10, 100, 1, 0, FULL), 0);
	assert_int_equal(packet_sz(&b, 2, 20, 101, 1, 0, SMALL), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(packet_sz(&c, 3, 30, 102, 1, 0, FULL), 0);
	/* FULL + SMALL + FULL does not fit: a, the oldest, goes out early. */
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 100);
	assert_int_equal(outs[0].size, FULL);
	assert_int_equal(st()->early, 1);
	assert_int_equal(still_held(), 2);
	assert_int_equal(n_out + st()->out_of_scope + still_held(), st()->held);

	/* One more full record: b goes too, c stays. */
	assert_int_equal(packet_sz(&c, 4, 40, 102, 0, 0, FULL), 0);
	assert_int_equal(n_out, 2);
	expect_out(1, 2, 101);
	assert_int_equal(st()->early, 2);
	assert_int_equal(n_out + st()->out_of_scope + still_held(), st()->held);

	assert_int_equal(hold__flush(h), 0);
	expect_out(2, 3, 102);
	expect_out(3, 4, 102);
	assert_int_equal(n_out, 4);
	assert_int_equal(n_out + st()->out_of_scope, st()->held);
}

static void test_overflow_record_too_big(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001);

	/* A record larger than max_bytes can never be held: it goes out at once, counted early,
	 * after the records of its connection held before it. */
	make(8, SMALL);
	assert_int_equal(packet_sz(&b, 1, 5, 101, 1, 0, SMALL), 0);
	assert_int_equal(packet_sz(&a, 2, 10, 100, 1, 0, SMALL), 0);
	assert_int_equal(n_out, 1); /* b made room for a */
	assert_int_equal(claim(&a, PKT_CLAIM_ACCEPT, 15, 150), 0);
	assert_int_equal(packet_sz(&a, 3, 20, 100, 0, 0, FULL), 0);
	assert_int_equal(n_out, 3);
	expect_out(0, 1, 101);
	expect_out(1, 2, 150);
	expect_out(2, 3, 150);
	assert_int_equal(st()->early, 3);
	assert_int_equal(still_held(), 0);
	assert_int_equal(n_out + st()->out_of_scope + still_held(), st()->held);
	/* The connection still waits for its taker. */
	assert_int_equal(packet_sz(&a, 4, 30, 100, 0, 0, SMALL), 0);
	assert_int_equal(claim(&a, PKT_CLAIM_USE, 40, 200), 0);
	expect_out(3, 4, 200);
}

static void test_overflow_nothing_lost(void **state)
{
	struct pkt_conn k;
	uint32_t i, seen[MAX_OUT] = { 0 };
	size_t n;

	/* 120 records over 30 connections through room for 7, some taken, some out of scope. */
	make(7, 5 * FULL);
	for (i = 1; i <= 120; i++) {
		k = conn(1 + i % 2, 80, (uint16_t)(40000 + i % 30));
		assert_int_equal(packet_sz(&k, i, i * 10, 100 + i % 30, i <= 30, 0,
					   i % 3 ? SMALL : FULL), 0);
		if (i % 11 == 0) {
			struct pkt_owner o = owner(500 + i, i % 2);

			assert_int_equal(claim_raw(&k, PKT_CLAIM_USE, i * 10, &o, CLAIM_SIZE), 0);
		}
		assert_true(still_held() <= 7);
		assert_int_equal(n_out + st()->out_of_scope + still_held(), st()->held);
	}
	assert_true(st()->early > 0);
	assert_true(st()->out_of_scope > 0);
	assert_int_equal(hold__flush(h), 0);
	assert_int_equal(still_held(), 0);
	assert_int_equal(st()->held, 120);
	assert_int_equal(n_out + st()->out_of_scope, 120);
	for (n = 0; n < n_out; n++) {
		assert_true(outs[n].intact);
		assert_int_equal(seen[outs[n].id]++, 0);
	}
}

/* ---- flush, keys, errors ---- */

static void test_flush_empties(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001);

	assert_int_equal(packet(&a, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&b, 2, 20, 101, 1), 0);
	assert_int_equal(claim(&b, PKT_CLAIM_ACCEPT, 30, 151), 0);
	assert_int_equal(packet(&a, 3, 40, 100, 0), 0);
	assert_int_equal(hold__flush(h), 0);
	assert_int_equal(n_out, 3);
	expect_out(0, 1, 100);
	expect_out(1, 3, 100);
	expect_out(2, 2, 151);
	assert_int_equal(still_held(), 0);
	assert_int_equal(st()->waited_out, 3);
	/* Again: nothing left. */
	assert_int_equal(hold__flush(h), 0);
	assert_int_equal(hold__expire(h, UINT64_MAX), 0);
	assert_int_equal(n_out, 3);
	/* Still usable afterwards. */
	assert_int_equal(packet(&a, 4, 50, 100, 1), 0);
	assert_int_equal(n_out, 3);
	assert_int_equal(claim(&a, PKT_CLAIM_USE, 60, 200), 0);
	expect_out(3, 4, 200);
}

static void test_keys_do_not_mix(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001);

	assert_int_equal(packet(&a, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&b, 2, 20, 101, 1), 0);
	assert_int_equal(packet(&a, 3, 30, 100, 0), 0);
	assert_int_equal(packet(&b, 4, 40, 101, 0), 0);
	assert_int_equal(claim(&b, PKT_CLAIM_USE, 50, 201), 0);
	assert_int_equal(n_out, 2);
	expect_out(0, 2, 201);
	expect_out(1, 4, 201);
	assert_int_equal(still_held(), 2);
	assert_int_equal(claim(&a, PKT_CLAIM_USE, 60, 200), 0);
	assert_int_equal(n_out, 4);
	expect_out(2, 1, 200);
	expect_out(3, 3, 200);
}

static void test_keys_netns(void **state)
{
	/* The same addresses and ports in two network namespaces: two connections. */
	struct pkt_conn a = conn(1, 80, 40000), b = conn(2, 80, 40000);

	assert_int_equal(packet(&a, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&b, 2, 20, 101, 1), 0);
	assert_int_equal(claim(&a, PKT_CLAIM_USE, 30, 200), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 200);
	/* A straggler of b is not a straggler of a. */
	assert_int_equal(packet(&b, 3, 40, 101, 0), 0);
	assert_int_equal(n_out, 1);
	assert_int_equal(claim(&b, PKT_CLAIM_ACCEPT, 50, 151), 0);
	assert_int_equal(claim(&b, PKT_CLAIM_CLOSED, 60, 999), 0);
	assert_int_equal(n_out, 3);
	expect_out(1, 2, 151);
	expect_out(2, 3, 151);
}

static void test_keys_addresses(void **state)
{
	/* Same ports, other remote address or family: other connections. */
	struct pkt_conn a = conn(1, 80, 40000), b = a, c = a;

	b.raddr[3] = 3;
	c.family = 6;
	assert_int_equal(packet(&a, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&b, 2, 20, 101, 1), 0);
	assert_int_equal(packet(&c, 3, 30, 102, 1), 0);
	assert_int_equal(claim(&b, PKT_CLAIM_USE, 40, 201), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 2, 201);
	assert_int_equal(claim(&c, PKT_CLAIM_USE, 50, 202), 0);
	assert_int_equal(n_out, 2);
	expect_out(1, 3, 202);
	assert_int_equal(still_held(), 1);
}

/* Keys that differ in one field only, many of them, so that some share a hash bucket (the
 * fields differ in more than one byte: a hash could tell single-byte changes apart). */
static void sibling_keys(int field)
{
	uint32_t round, j, id, d, x = 12345;

	make(32, 1 << 20);
	for (round = 0; round < 64; round++) {
		struct pkt_conn k[32];

		n_out = 0;
		for (j = 0; j < 16; j++) {
			x = x * 1103515245u + 12345u;
			d = (x >> 8) | 0x01010101u; /* every byte changes */
			k[2 * j] = conn(7, 80, (uint16_t)(10000 + round * 16 + j));
			k[2 * j + 1] = k[2 * j];
			switch (field) {
			case 0: k[2 * j + 1].netns ^= d; break;
			case 1: k[2 * j + 1].family = 6; break;
			case 2: k[2 * j + 1].lport ^= (uint16_t)d; break;
			case 3: k[2 * j + 1].rport ^= (uint16_t)d; break;
			case 4: memcpy(&k[2 * j + 1].laddr[12], &d, 4); break;
			default: memcpy(&k[2 * j + 1].raddr[12], &d, 4); break;
			}
		}
		for (j = 0; j < 32; j++)
			assert_int_equal(packet(&k[j], j, round * 100 + j, 100, 1), 0);
		assert_int_equal(n_out, 0);
		for (j = 0; j < 32; j++) {
			id = j % 2 ? j - 1 : j + 1; /* the sibling first, then the other */
			assert_int_equal(claim(&k[id], PKT_CLAIM_USE, round * 100 + 50, 1000 + id), 0);
			assert_int_equal(n_out, j + 1);
			if (outs[j].id != id || outs[j].pid != 1000 + id)
				fail_msg("field %d round %u: record %u went to %u on claim of %u", field,
					 round, outs[j].id, outs[j].pid, id);
		}
		assert_int_equal(hold__flush(h), 0);
		assert_int_equal(n_out, 32);
	}
	assert_int_equal(st()->early, 0);
}

static void test_keys_collide_netns(void **state)
{
	sibling_keys(0);
}

static void test_keys_collide_family(void **state)
{
	sibling_keys(1);
}

static void test_keys_collide_ports_addrs(void **state)
{
	sibling_keys(2);
	sibling_keys(3);
	sibling_keys(4);
	sibling_keys(5);
}

static void test_emit_error_returned(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001), c = conn(1, 80, 40002);

	assert_int_equal(packet(&a, 1, 10, 100, 1), 0);
	assert_int_equal(packet(&a, 2, 20, 100, 0), 0);
	emit_err = -EPIPE;
	assert_int_equal(claim(&a, PKT_CLAIM_USE, 30, 200), -EPIPE);
	/* Both were offered (and are gone): the error does not keep them held. */
	assert_int_equal(emit_calls, 2);
	assert_int_equal(still_held(), 0);
	/* A straggler, a reset, an expiry, a flush: each passes the error back. */
	assert_int_equal(packet(&a, 3, 40, 100, 0), -EPIPE);
	assert_int_equal(packet(&b, 4, 50, 101, 1), 0);
	assert_int_equal(packet_sz(&b, 5, 60, 101, 0, 1, SMALL), -EPIPE);
	assert_int_equal(packet(&c, 6, 70, 102, 1), 0);
	assert_int_equal(hold__expire(h, 70 + WAIT), -EPIPE);
	assert_int_equal(packet(&c, 7, 80, 102, 1), 0);
	assert_int_equal(hold__flush(h), -EPIPE);
	emit_err = 0;
	assert_int_equal(hold__flush(h), 0);
	assert_int_equal(n_out, 0);
}

static void test_emit_error_on_overflow(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001);

	make(1, 1 << 20);
	assert_int_equal(packet(&a, 1, 10, 100, 1), 0);
	emit_err = -EIO;
	assert_int_equal(packet(&b, 2, 20, 101, 1), -EIO);
	assert_int_equal(st()->early, 1);
	emit_err = 0;
	assert_int_equal(hold__flush(h), 0);
	expect_out(0, 2, 101);
}

/* ---- the order barrier ---- */

/* The oldest held record's timestamp, whatever order connections came and went in. */
static void test_order_barrier_oldest(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001), c = conn(1, 80, 40002);

	(void)state;
	assert_true(hold__order_barrier(h, 0, 1000) == UINT64_MAX);
	assert_int_equal(packet(&b, 1, 200, 100, 1), 0);
	assert_int_equal(packet(&a, 2, 100, 100, 1), 0); /* older, later into the hold */
	assert_int_equal(packet(&c, 3, 300, 100, 1), 0);
	assert_int_equal(packet(&a, 4, 400, 100, 0), 0);
	assert_int_equal(hold__order_barrier(h, 0, 1000), 100);
	/* Accepted but not taken: still held, still the barrier. */
	assert_int_equal(claim(&a, PKT_CLAIM_ACCEPT, 450, 150), 0);
	assert_int_equal(hold__order_barrier(h, 0, 1000), 100);
	assert_int_equal(claim(&a, PKT_CLAIM_USE, 500, 200), 0);
	assert_int_equal(hold__order_barrier(h, 0, 1000), 200);
	/* A straggler of a taken connection is not held. */
	assert_int_equal(packet(&a, 5, 450, 100, 0), 0);
	assert_int_equal(hold__order_barrier(h, 0, 1000), 200);
	assert_int_equal(claim(&c, PKT_CLAIM_CLOSED, 600, 0), 0);
	assert_int_equal(hold__order_barrier(h, 0, 1000), 200);
	assert_int_equal(packet_sz(&b, 6, 700, 100, 0, 1, SMALL), 0); /* a reset */
	assert_true(hold__order_barrier(h, 0, 1000) == UINT64_MAX);
}

/* A connection held longer than the wait holds nothing back, then or later. */
static void test_order_barrier_waited(void **state)
{
	struct pkt_conn a = conn(1, 80, 40000), b = conn(1, 80, 40001);

	(void)state;
	assert_int_equal(packet(&a, 1, 100, 100, 1), 0);
	assert_int_equal(packet(&b, 2, 500, 100, 1), 0);
	assert_int_equal(hold__order_barrier(h, 1100, 1000), 100);
	assert_int_equal(hold__order_barrier(h, 1101, 1000), 500);
	/* More records of a: still passed over. */
	assert_int_equal(packet(&a, 3, 1200, 100, 0), 0);
	assert_int_equal(hold__order_barrier(h, 0, 1000), 500);
	assert_true(hold__order_barrier(h, 1501, 1000) == UINT64_MAX);
	/* Still held all the same, and released in order when taken. */
	assert_int_equal(claim(&a, PKT_CLAIM_USE, 1300, 200), 0);
	assert_int_equal(n_out, 2);
	expect_out(0, 1, 200);
	expect_out(1, 3, 200);
}

static void test_malformed_claim(void **state)
{
	struct pkt_conn c = conn(1, 80, 40000);
	struct pkt_owner o = owner(200, 1);

	assert_int_equal(packet(&c, 1, 10, 100, 1), 0);
	assert_int_equal(claim_raw(&c, PKT_CLAIM_USE, 20, &o, CLAIM_SIZE - 1), -EINVAL);
	assert_int_equal(claim_raw(&c, PKT_CLAIM_USE, 20, &o, offsetof(struct pkt_record, hdr)),
			 -EINVAL);
	assert_int_equal(claim_raw(&c, 0, 20, &o, CLAIM_SIZE), -EINVAL);
	assert_int_equal(claim_raw(&c, 4, 20, &o, CLAIM_SIZE), -EINVAL);
	assert_int_equal(claim_raw(&c, 0xff, 20, &o, CLAIM_SIZE), -EINVAL);
	assert_int_equal(claim_raw(&c, PKT_CLAIM_USE | PKT_CLAIM_ACCEPT | 4, 20, &o, CLAIM_SIZE),
			 -EINVAL);
	/* None of them touched the held record. */
	assert_int_equal(n_out, 0);
	assert_int_equal(still_held(), 1);
	/* The exact size is enough. */
	assert_int_equal(claim_raw(&c, PKT_CLAIM_USE, 20, &o, CLAIM_SIZE), 0);
	assert_int_equal(n_out, 1);
	expect_out(0, 1, 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_use_releases_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_use_keeps_record_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_straggler_after_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_use_before_packets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_syn_after_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_use_changes_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_begins_each_their_taker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_begin_after_its_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flow_begin_untaken_then_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accept_then_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accept_then_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accept_before_packets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_accept_expire_own_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed_with_acceptor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed_after_use_forgets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed_without_acceptor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_releases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_with_acceptor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_scope_taker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_scope_own_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_scope_acceptor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow_packets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow_acceptor_is_provisional_owner, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_overflow_one_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow_record_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow_nothing_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_empties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_do_not_mix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_netns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_addresses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_collide_netns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_collide_family, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_collide_ports_addrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emit_error_returned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emit_error_on_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_barrier_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_barrier_waited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_waits_for_the_taker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_needs_the_handshake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_at_most, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_nothing_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_not_when_named, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
