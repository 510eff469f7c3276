// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The reorder stage: records out in timestamp order within the window, late ones counted. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "order.h"

#define WINDOW 1000u
#define SMALL (offsetof(struct pkt_record, hdr) + PKT_HDR_SMALL)
#define MAX_OUT 4096

/* What the emit callback saw. */
struct out {
	uint64_t ts;
	uint32_t id;  /* pkt_len of the record: the test's sequence number */
	uint32_t pid; /* owner given to emit, else the record's own */
	size_t size;
	int late;
	int intact;   /* the hdr bytes the test wrote are there */
};

static struct out outs[MAX_OUT];
static size_t n_out;
static int emit_err;
static struct order *o;

static int emit(void *ctx, const struct pkt_record *rec, size_t size,
		const struct pkt_owner *owner, int late)
{
	struct out *x = &outs[n_out++];

	(void)ctx;
	assert_true(n_out <= MAX_OUT);
	x->ts = rec->ts_ns;
	x->id = rec->pkt_len;
	x->pid = owner ? owner->pid : rec->owner.pid;
	x->size = size;
	x->late = late;
	x->intact = rec->hdr[0] == (uint8_t)rec->pkt_len && rec->hdr[PKT_HDR_SMALL - 1] == 0x5a;
	return emit_err;
}

static int push(uint64_t ts, uint32_t id)
{
	struct pkt_record r;

	memset(&r, 0, sizeof(r));
	r.ts_ns = ts;
	r.pkt_len = id;
	r.owner.pid = 100;
	r.hdr[0] = (uint8_t)id;
	r.hdr[PKT_HDR_SMALL - 1] = 0x5a;
	return order__push(o, &r, SMALL, NULL);
}

/* The same record made in place (order__slot, then order__commit); pushed when it cannot wait. */
static int place(uint64_t ts, uint32_t id)
{
	struct pkt_record *r;
	int err, e;

	r = order__slot(o, ts, SMALL, &err);
	if (!r) {
		assert_int_equal(err, 0);
		return push(ts, id);
	}
	memset(r, 0, SMALL);
	r->ts_ns = ts;
	r->pkt_len = id;
	r->owner.pid = 100;
	r->hdr[0] = (uint8_t)id;
	r->hdr[PKT_HDR_SMALL - 1] = 0x5a;
	e = order__commit(o, SMALL, NULL);
	return err ? err : e;
}

static int make(uint64_t window, size_t capacity)
{
	struct order_config cfg = {.window_ns = window, .capacity = capacity};

	order__free(o);
	o = order__new(&cfg, emit, NULL);
	return o ? 0 : -1;
}

static int setup(void **state)
{
	(void)state;
	n_out = 0;
	emit_err = 0;
	o = NULL;
	return make(WINDOW, 64);
}

static int teardown(void **state)
{
	(void)state;
	order__free(o);
	o = NULL;
	return 0;
}

static void assert_sorted(void)
{
	for (size_t i = 1; i < n_out; i++)
		assert_true(outs[i - 1].ts <= outs[i].ts);
}

/* Sorted, the late ones aside. */
static void assert_sorted_but_late(void)
{
	uint64_t last = 0;

	for (size_t i = 0; i < n_out; i++) {
		if (outs[i].late)
			continue;
		assert_true(last <= outs[i].ts);
		last = outs[i].ts;
	}
}

/* Out of order within the window: held, then written sorted; nothing counted late. */
static void test_sorts_within_window(void **state)
{
	(void)state;
	assert_int_equal(push(10000, 1), 0);
	assert_int_equal(push(10300, 2), 0);
	assert_int_equal(push(10100, 3), 0); /* 200 ns behind: another CPU */
	assert_int_equal(push(10200, 4), 0);
	assert_int_equal(n_out, 0);          /* all within the window of the newest */
	assert_int_equal(order__pending(o), 4);
	assert_int_equal(order__flush(o), 0);
	assert_int_equal(n_out, 4);
	assert_int_equal(outs[0].id, 1);
	assert_int_equal(outs[1].id, 3);
	assert_int_equal(outs[2].id, 4);
	assert_int_equal(outs[3].id, 2);
	for (size_t i = 0; i < n_out; i++) {
		assert_false(outs[i].late);
		assert_true(outs[i].intact);
		assert_int_equal(outs[i].size, SMALL);
	}
	assert_int_equal(order__stats(o)->late, 0);
	assert_int_equal(order__pending(o), 0);
}

/* A record leaves once the newest timestamp is more than the window past it, not before. */
static void test_released_by_newest(void **state)
{
	(void)state;
	push(10000, 1);
	push(10000 + WINDOW, 2); /* exactly the window: 1 may still be overtaken */
	assert_int_equal(n_out, 0);
	push(10001 + WINDOW, 3);
	assert_int_equal(n_out, 1);
	assert_int_equal(outs[0].id, 1);
	push(20000, 4);
	assert_int_equal(n_out, 3);
	assert_int_equal(outs[1].id, 2);
	assert_int_equal(outs[2].id, 3);
	assert_int_equal(order__pending(o), 1);
}

/* The clock releases what the window has passed when no newer record comes. */
static void test_released_by_clock(void **state)
{
	(void)state;
	push(10000, 1);
	push(10500, 2);
	assert_int_equal(order__expire(o, 10000 + WINDOW), 0);
	assert_int_equal(n_out, 0);
	assert_int_equal(order__expire(o, 10001 + WINDOW), 0);
	assert_int_equal(n_out, 1);
	assert_int_equal(order__expire(o, 100000), 0);
	assert_int_equal(n_out, 2);
	assert_int_equal(outs[1].id, 2);
	/* A clock before the window's length (early boot) releases nothing, no wrap. */
	push(200, 3);
	assert_int_equal(order__expire(o, 500), 0);
	assert_int_equal(n_out, 3); /* 3 was late (behind 10500): written at once */
	assert_true(outs[2].late);
}

/* A barrier holds back what is stamped at or after it, whatever the newest record or the clock
 * say; flush still lets everything out. */
static void test_barrier_holds_back(void **state)
{
	(void)state;
	order__set_barrier(o, 10500);
	push(10000, 1);
	push(10500, 2); /* at the barrier: waits */
	push(11000, 3);
	push(50000, 4);
	assert_int_equal(n_out, 1);
	assert_int_equal(outs[0].id, 1);
	assert_int_equal(order__expire(o, UINT64_MAX), 0);
	assert_int_equal(n_out, 1);
	assert_int_equal(order__newest(o), 50000);
	/* What the barrier stood for comes in before it lifts: sorted in, not late. */
	push(10400, 5);
	push(10500, 6);
	order__set_barrier(o, UINT64_MAX);
	assert_int_equal(order__expire(o, 50000 + WINDOW + 1), 0);
	assert_int_equal(n_out, 6);
	assert_int_equal(outs[1].id, 5);
	assert_int_equal(outs[2].id, 2);
	assert_int_equal(outs[3].id, 6);
	assert_int_equal(outs[4].id, 3);
	assert_int_equal(outs[5].id, 4);
	assert_int_equal(order__stats(o)->late, 0);
	order__set_barrier(o, 60000);
	push(70000, 7);
	assert_int_equal(order__flush(o), 0);
	assert_int_equal(n_out, 7);
}

/* A full stage lets its oldest out even behind a barrier, counted early. */
static void test_barrier_full_stage(void **state)
{
	struct order_config cfg = {.window_ns = WINDOW, .capacity = 2};

	(void)state;
	order__free(o);
	o = order__new(&cfg, emit, NULL);
	assert_non_null(o);
	order__set_barrier(o, 100);
	push(100, 1);
	push(200, 2);
	assert_int_equal(n_out, 0);
	push(300, 3);
	assert_int_equal(n_out, 1);
	assert_int_equal(outs[0].id, 1);
	assert_int_equal(order__stats(o)->early, 1);
}

/* Later than the window allowed: written at once, marked and counted, never dropped. */
static void test_late_counted_not_dropped(void **state)
{
	(void)state;
	push(10000, 1);
	push(20000, 2); /* releases 1 */
	assert_int_equal(n_out, 1);
	push(9000, 3); /* behind 1, already written */
	assert_int_equal(n_out, 2);
	assert_int_equal(outs[1].id, 3);
	assert_true(outs[1].late);
	assert_int_equal(order__stats(o)->late, 1);
	assert_int_equal(order__stats(o)->max_late_ns, 1000);
	/* Not yet passed: sorted in as usual, not late. */
	push(15000, 4);
	order__flush(o);
	assert_int_equal(n_out, 4);
	assert_int_equal(outs[2].id, 4);
	assert_int_equal(outs[3].id, 2);
	assert_false(outs[2].late || outs[3].late);
	assert_int_equal(order__stats(o)->late, 1);
	assert_int_equal(order__stats(o)->pushed, 4);
}

/* Full: the oldest goes out early (counted), the order so far still holds. */
static void test_full_releases_oldest(void **state)
{
	(void)state;
	assert_int_equal(make(1000000, 4), 0);
	push(500, 5);
	push(100, 1);
	push(400, 4);
	push(200, 2);
	assert_int_equal(n_out, 0);
	push(300, 3); /* no room: 100 leaves */
	assert_int_equal(n_out, 1);
	assert_int_equal(outs[0].id, 1);
	assert_int_equal(order__stats(o)->early, 1);
	assert_int_equal(order__stats(o)->max_held, 4);
	push(600, 6); /* 200 leaves */
	order__flush(o);
	assert_int_equal(n_out, 6);
	for (size_t i = 0; i < n_out; i++)
		assert_int_equal(outs[i].id, i + 1);
	assert_int_equal(order__stats(o)->early, 2);
	assert_int_equal(order__stats(o)->late, 0);
}

/* Flush at exit writes everything held, in order; equal timestamps keep arrival order. */
static void test_flush_in_order_stable(void **state)
{
	(void)state;
	push(300, 1);
	push(100, 2);
	push(300, 3);
	push(100, 4);
	assert_int_equal(order__flush(o), 0);
	assert_int_equal(n_out, 4);
	assert_int_equal(outs[0].id, 2);
	assert_int_equal(outs[1].id, 4);
	assert_int_equal(outs[2].id, 1);
	assert_int_equal(outs[3].id, 3);
	assert_int_equal(order__flush(o), 0);
	assert_int_equal(n_out, 4);
}

/* An owner given with the record (the hold's) travels with it through the stage. */
static void test_owner_kept(void **state)
{
	struct pkt_record r;
	struct pkt_owner ow = {.pid = 4242};

	(void)state;
	memset(&r, 0, sizeof(r));
	r.ts_ns = 500;
	r.pkt_len = 1;
	r.owner.pid = 100;
	assert_int_equal(order__push(o, &r, SMALL, &ow), 0);
	ow.pid = 1; /* the hold's copy changes after the push: the stage kept its own */
	r.ts_ns = 400;
	r.pkt_len = 2;
	assert_int_equal(order__push(o, &r, SMALL, NULL), 0);
	order__flush(o);
	assert_int_equal(n_out, 2);
	assert_int_equal(outs[0].pid, 100);
	assert_int_equal(outs[1].pid, 4242);
}

/* Window 0: records pass straight through, out-of-order ones still counted. */
static void test_window_zero_passes_through(void **state)
{
	(void)state;
	assert_int_equal(make(0, 64), 0);
	push(200, 1);
	push(100, 2);
	push(300, 3);
	assert_int_equal(n_out, 3);
	assert_int_equal(order__pending(o), 0);
	assert_int_equal(outs[1].id, 2);
	assert_true(outs[1].late);
	assert_int_equal(order__stats(o)->late, 1);
	assert_int_equal(order__stats(o)->max_late_ns, 100);
}

/* An emit error comes back from push and flush; the stage still empties. */
static void test_emit_error_returned(void **state)
{
	(void)state;
	push(100, 1);
	push(200, 2);
	emit_err = -EPIPE;
	assert_int_equal(push(100 + 2 * WINDOW, 3), -EPIPE);
	assert_int_equal(order__flush(o), -EPIPE);
	assert_int_equal(order__pending(o), 0);
	assert_int_equal(n_out, 3);
}

/* Random skew up to half the window across many records: written sorted, none late. */
static void test_random_skew_sorted(void **state)
{
	uint64_t ts = 1000000;

	(void)state;
	assert_int_equal(make(WINDOW, 200), 0); /* not a power of two: the ring is larger */
	srand(7);
	for (uint32_t i = 0; i < 3000; i++) {
		ts += rand() % 50;
		push(ts - rand() % (WINDOW / 2), i);
	}
	order__flush(o);
	assert_int_equal(n_out, 3000);
	assert_sorted();
	assert_int_equal(order__stats(o)->late, 0);
	assert_int_equal(order__stats(o)->early, 0);
}

/* Records made in place and pushed ones, mixed, through a stage often full: out exactly as
 * when all are pushed (order, late and early ones), and intact: no slot handed out is one a
 * held record is using. */
static void test_made_in_place(void **state)
{
	static struct out pushed_only[3000];
	struct order_stats st;
	uint64_t ts;
	int err;

	(void)state;
	for (int mixed = 0; mixed < 2; mixed++) {
		assert_int_equal(make(WINDOW, 16), 0);
		n_out = 0;
		srand(11);
		ts = 1000000;
		for (uint32_t i = 0; i < 3000; i++) {
			ts += rand() % 40;
			assert_int_equal((mixed && i & 1 ? place : push)(ts - rand() % WINDOW, i), 0);
		}
		order__flush(o);
		assert_int_equal(n_out, 3000);
		if (!mixed) {
			memcpy(pushed_only, outs, sizeof(pushed_only));
			st = *order__stats(o);
			continue;
		}
		assert_memory_equal(outs, pushed_only, sizeof(pushed_only));
		assert_memory_equal(order__stats(o), &st, sizeof(st));
	}
	for (size_t i = 0; i < n_out; i++)
		assert_true(outs[i].intact);
	assert_true(st.early > 0 && st.late > 0);

	/* No slot for what cannot wait: too late, too large, or no window. */
	assert_null(order__slot(o, 10, SMALL, &err));
	assert_null(order__slot(o, ts + 1, sizeof(struct pkt_record), &err));
	assert_int_equal(make(0, 64), 0);
	assert_null(order__slot(o, ts, SMALL, &err));
	assert_int_equal(err, 0);
}

/* A full stage's early release made room for a slot: its emit error comes back. */
static void test_slot_early_error(void **state)
{
	struct pkt_record *r;
	int err = 0;

	(void)state;
	assert_int_equal(make(1000000, 2), 0);
	place(100, 1);
	place(200, 2);
	emit_err = -EPIPE;
	r = order__slot(o, 300, SMALL, &err);
	assert_non_null(r);
	assert_int_equal(err, -EPIPE);
	assert_int_equal(n_out, 1);
	assert_int_equal(outs[0].id, 1);
	emit_err = 0;
	memset(r, 0, SMALL);
	r->ts_ns = 300;
	r->pkt_len = 3;
	assert_int_equal(order__commit(o, SMALL, NULL), 0);
	order__flush(o);
	assert_int_equal(n_out, 3);
	assert_int_equal(outs[2].id, 3);
}

/* What is known to be in order goes out at once, after what is older in the stage and before
 * the barrier; the rest still waits for the window. */
static void test_safe_written_at_once(void **state)
{
	(void)state;
	assert_int_equal(push(10000, 1), 0); /* nothing known yet: waits */
	assert_int_equal(n_out, 0);
	order__set_safe(o, 10500);
	assert_int_equal(push(10200, 2), 0); /* known: 1 then 2, at once */
	assert_int_equal(n_out, 2);
	assert_int_equal(outs[0].id, 1);
	assert_int_equal(outs[1].id, 2);
	assert_int_equal(order__pending(o), 0);
	assert_int_equal(push(10600, 3), 0); /* past the mark: waits */
	assert_int_equal(push(10500, 4), 0); /* at the mark: out, 3 still waits */
	assert_int_equal(n_out, 3);
	assert_int_equal(outs[2].id, 4);
	assert_int_equal(order__pending(o), 1);
	/* The mark moves on: what waits goes out at the next push or expiry. */
	order__set_safe(o, 11000);
	assert_int_equal(order__expire(o, 10700), 0);
	assert_int_equal(n_out, 4);
	assert_int_equal(outs[3].id, 3);
	/* Held packets' barrier: nothing at or after it leaves by the mark. */
	order__set_barrier(o, 10800);
	assert_int_equal(push(10900, 5), 0);
	assert_int_equal(push(10700, 6), 0);
	assert_int_equal(n_out, 5);
	assert_int_equal(outs[4].id, 6);
	assert_int_equal(order__pending(o), 1);
	order__set_barrier(o, UINT64_MAX);
	assert_int_equal(order__expire(o, 10700), 0);
	assert_int_equal(n_out, 6);
	assert_int_equal(outs[5].id, 5);
	/* Behind what was written: late, counted, as without the mark (not "in order"). */
	assert_int_equal(push(10100, 7), 0);
	assert_int_equal(n_out, 7);
	assert_true(outs[6].late);
	assert_sorted_but_late();
	assert_int_equal(order__stats(o)->late, 1);
	assert_int_equal(order__stats(o)->direct, 3);
	assert_int_equal(order__stats(o)->pushed, 7);
	/* One older than the mark while the stage holds newer ones at or before it (a held
	 * packet let go): it goes out before them, they stay until their turn. */
	order__set_safe(o, 0);
	assert_int_equal(push(11300, 8), 0);
	assert_int_equal(push(11200, 9), 0);
	assert_int_equal(order__pending(o), 2);
	order__set_safe(o, 11400);
	assert_int_equal(push(11000, 10), 0);
	assert_int_equal(n_out, 8);
	assert_int_equal(outs[7].id, 10);
	assert_false(outs[7].late);
	assert_int_equal(order__pending(o), 2);
	assert_int_equal(order__expire(o, 0), 0);
	assert_int_equal(n_out, 10);
	assert_int_equal(outs[8].id, 9);
	assert_int_equal(outs[9].id, 8);
	assert_int_equal(order__stats(o)->late, 1);
	assert_int_equal(order__stats(o)->direct, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sorts_within_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_released_by_newest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_released_by_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_counted_not_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_barrier_holds_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_barrier_full_stage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_releases_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_in_order_stable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_zero_passes_through, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emit_error_returned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_skew_sorted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_made_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slot_early_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_safe_written_at_once, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
