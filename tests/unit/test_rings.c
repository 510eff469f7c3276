// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The rings' reader: two fast rings in memory (a memfd laid out as the kernel side's mmapable
 * array), records written into them as the programs write them, and what the reader hands over:
 * merged by timestamp, and the bound it gives (rings__safe_ns) never above a record still to
 * come, overtaken records and ones still being written included. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pktrace.h"
#include "rings.h"

#define BYTES 4096 /* each fast ring's slots: 32 */
#define NRINGS 2
#define STRIDE (PKT_FAST_CTL + BYTES)

static unsigned char *mem;
static struct rings *rs;
static int fd = -1;

/* What the callback saw: each record's timestamp and the bound at its hand-over. */
static uint64_t seen_ts[64], seen_safe[64];
static size_t nseen;
static uint64_t again_ts; /* a record the callback leaves for the next pass, once */

static int on_rec(void *ctx, const void *data, size_t size)
{
	uint64_t ts;

	(void)ctx;
	assert_true(size >= 8);
	assert_true(nseen < 64);
	memcpy(&ts, data, 8);
	if (again_ts && ts == again_ts) {
		again_ts = 0;
		return RINGS_AGAIN; /* as an owner definition still to come makes it */
	}
	seen_ts[nseen] = ts;
	seen_safe[nseen++] = rings__safe_ns(rs);
	return 0;
}

static struct pkt_fast_ctl *ctl(int ring)
{
	return (struct pkt_fast_ctl *)(mem + (size_t)ring * STRIDE);
}

/* Reserve a slot as fast_reserve does: the head moves; the slot's header stays 0. */
static unsigned char *reserve(int ring)
{
	struct pkt_fast_ctl *c = ctl(ring);
	unsigned char *slot = (unsigned char *)c + PKT_FAST_CTL + (c->head & (BYTES - 1));

	c->head += PKT_FAST_SLOT;
	return slot;
}

/* Stamp and commit it as fast_commit does, overtaken or not. */
static void commit(unsigned char *slot, uint64_t ts, int overtaken)
{
	uint64_t word = 16 | (overtaken ? PKT_FAST_OVERTAKEN : 0);

	memcpy(slot + 8, &ts, 8);
	memset(slot + 16, 0xab, 8);
	__atomic_store_n((uint64_t *)slot, word, __ATOMIC_RELEASE);
}

static void put(int ring, uint64_t ts, int overtaken)
{
	commit(reserve(ring), ts, overtaken);
}

static uint64_t boot_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_BOOTTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* A pass over empty rings (each read to its end), then a pause: records stamped from now on
 * come after it, as the kernel side's would. Returns a base for their timestamps. */
static uint64_t fresh(void)
{
	assert_int_equal(rings__consume(rs), 0);
	usleep(2000);
	nseen = 0;
	return boot_ns() - 1000000; /* 1 ms ago: after the pass, before the next one's clock */
}

static int setup(void **state)
{
	struct rings_fast fast = {.n = NRINGS, .bytes = BYTES};
	size_t len = (STRIDE * NRINGS + 4095) & ~(size_t)4095;

	(void)state;
	fd = memfd_create("rings-test", 0);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)len), 0);
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(mem != MAP_FAILED);
	fast.fd = fd;
	rs = rings__new(NULL, 0, 0, &fast, on_rec, NULL);
	assert_non_null(rs);
	nseen = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rings__free(rs);
	close(fd);
	return 0;
}

/* Records no later reservation overtook: merged by timestamp, each known in order. */
static void test_merged_and_known(void **state)
{
	uint64_t t = fresh();

	(void)state;
	put(0, t + 100, 0);
	put(0, t + 300, 0);
	put(1, t + 200, 0);
	put(1, t + 400, 0);
	assert_int_equal(rings__consume(rs), 4);
	assert_int_equal(nseen, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(seen_ts[i], t + 100 * (i + 1));
		assert_true(seen_ts[i] <= seen_safe[i]);
	}
}

/* A record overtaken before its commit (an interrupt's record reserved after it, stamped
 * before it): neither it nor anything stamped after what follows it is known in order until
 * the ring has gone past the one that overtook it. */
static void test_overtaken_not_known(void **state)
{
	uint64_t t = fresh();
	unsigned char *outer;

	(void)state;
	outer = reserve(0);
	put(0, t + 450, 0);        /* the interrupt's record: reserved second, stamped first */
	commit(outer, t + 500, 1); /* the outer one, overtaken */
	put(1, t + 460, 0);
	assert_int_equal(rings__consume(rs), 3);
	assert_int_equal(nseen, 3);
	/* Merged by heads: 460 (ring 1), then 500 (ring 0's head), then 450. */
	assert_int_equal(seen_ts[0], t + 460);
	assert_int_equal(seen_ts[1], t + 500);
	assert_int_equal(seen_ts[2], t + 450);
	/* 450 was still to come at the first two: the bound stayed below it. */
	assert_true(seen_safe[0] <= t + 450);
	assert_true(seen_safe[1] <= t + 450);
	assert_true(seen_ts[2] <= seen_safe[2]);
}

/* A ring with a record still being written: nothing is known past what that ring had already
 * given before it (the record may be stamped anything after its reservation). */
static void test_blocked_ring_bounds(void **state)
{
	uint64_t t = fresh();
	unsigned char *busy;

	(void)state;
	put(1, t + 100, 0);
	busy = reserve(1); /* reserved, not yet committed */
	put(0, t + 50, 0);
	put(0, t + 150, 0);
	assert_true(rings__consume(rs) >= 2);
	/* 50 and 100 are in order; 150 waits for the busy record (the merge stops at 100). */
	assert_int_equal(nseen, 2);
	assert_int_equal(seen_ts[0], t + 50);
	assert_int_equal(seen_ts[1], t + 100);
	assert_true(seen_ts[0] <= seen_safe[0]);
	commit(busy, t + 120, 0);
	nseen = 0;
	assert_int_equal(rings__consume(rs), 2);
	assert_int_equal(nseen, 2);
	assert_int_equal(seen_ts[0], t + 120);
	assert_int_equal(seen_ts[1], t + 150);
	assert_true(seen_ts[0] <= seen_safe[0] && seen_ts[1] <= seen_safe[1]);
}

/* A record left for the next pass (its owner definition not in yet): the other rings go on in
 * this one, but nothing is known in order past it, as it comes later. */
static void test_again_bounds(void **state)
{
	uint64_t t = fresh();

	(void)state;
	put(0, t + 100, 0);
	put(1, t + 150, 0);
	put(1, t + 200, 0);
	again_ts = t + 100;
	assert_true(rings__consume(rs) >= 2);
	assert_int_equal(nseen, 2);
	assert_int_equal(seen_ts[0], t + 150);
	assert_int_equal(seen_ts[1], t + 200);
	assert_true(seen_safe[0] <= t + 100 && seen_safe[1] <= t + 100);
	nseen = 0;
	assert_int_equal(rings__consume(rs), 1);
	assert_int_equal(nseen, 1);
	assert_int_equal(seen_ts[0], t + 100);
	assert_true(seen_ts[0] <= seen_safe[0]);
}

/* Records stamped after a pass began are not known in order in it, however they merge. */
static void test_clock_bounds(void **state)
{
	uint64_t t = fresh();

	(void)state;
	put(0, t + 100, 0);
	put(1, boot_ns() + 1000000000ULL, 0); /* a second ahead: past this pass's clock */
	assert_int_equal(rings__consume(rs), 2);
	assert_int_equal(nseen, 2);
	assert_true(seen_ts[0] <= seen_safe[0]);
	assert_true(seen_safe[1] < seen_ts[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_merged_and_known, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overtaken_not_known, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocked_ring_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_again_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_bounds, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
