// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Owner definitions by id (owners.c), and packet records made whole from the ring buffer's
 * form (decode_wire). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode.h"
#include "owners.h"

static struct pkt_owner owner_of(uint32_t pid)
{
	struct pkt_owner o = {.cgroup_id = 1000 + pid, .pid = pid, .tid = pid + 1, .uid = 7};

	snprintf(o.comm, sizeof(o.comm), "task%u", pid);
	return o;
}

static void test_put_get_two_generations(void **state)
{
	struct owners *t = owners__new(64);
	struct pkt_owner a = owner_of(1), b = owner_of(2);
	const struct owner_entry *e;

	(void)state;
	assert_non_null(t);
	assert_null(owners__get(t, 1));
	assert_int_equal(owners__put(t, 0, &a, "lo"), -EINVAL); /* 0 names no definition */
	assert_int_equal(owners__put(t, 1, &a, "lo"), 0);
	assert_int_equal(owners__put(t, 2, &b, "eth0"), 0);
	e = owners__get(t, 2);
	assert_non_null(e);
	assert_int_equal(e->owner.pid, 2);
	assert_string_equal(e->ifname, "eth0");
	assert_int_equal(owners__current(t), 2);
	/* After one rotation the older generation still answers; after two it is gone. */
	owners__rotate(t);
	assert_int_equal(owners__current(t), 0);
	assert_int_equal(owners__put(t, 3, &b, "lo"), 0);
	assert_non_null(owners__get(t, 1));
	assert_non_null(owners__get(t, 3));
	owners__rotate(t);
	assert_null(owners__get(t, 1));
	assert_null(owners__get(t, 2));
	assert_non_null(owners__get(t, 3));
	/* The same id again replaces its definition, counted once. */
	assert_int_equal(owners__put(t, 4, &a, "lo"), 0);
	assert_int_equal(owners__put(t, 4, &b, "lo"), 0);
	assert_int_equal(owners__current(t), 1);
	assert_int_equal(owners__get(t, 4)->owner.pid, 2);
	owners__free(t);
}

static void test_full_generation(void **state)
{
	struct owners *t = owners__new(100);
	struct pkt_owner a = owner_of(5);
	uint64_t id;
	int err = 0;

	(void)state;
	assert_non_null(t);
	/* Consecutive ids, as the kernel side hands them out: all found until the table says it
	 * is full, never silently dropped. */
	for (id = 1; id < 100000 && !err; id++)
		err = owners__put(t, id, &a, "lo");
	assert_int_equal(err, -ENOSPC);
	assert_true(id - 2 >= 100);
	for (uint64_t i = 1; i < id - 1; i++)
		assert_non_null(owners__get(t, i));
	assert_null(owners__get(t, id - 1));
	owners__free(t);
}

static void test_decode_wire(void **state)
{
	struct pkt_wire *w = calloc(1, sizeof(*w));
	struct pkt_record *r = calloc(1, sizeof(*r));
	struct pkt_owner o = owner_of(42);
	size_t size = offsetof(struct pkt_wire, hdr) + 52;
	long n;

	(void)state;
	w->ts_ns = 123456789;
	w->kind = PKT_REC_PACKET;
	w->flags = PKT_F_HELD;
	w->hdr_len = 52;
	w->pkt_len = 152;
	w->owner_id = 9;
	w->ifindex = 3;
	w->netns = 4026531840u;
	w->direction = PKT_EGRESS;
	w->l3_proto = 4;
	w->sk_proto = 6;
	w->l4_proto = 6;
	for (int i = 0; i < 52; i++)
		w->hdr[i] = (uint8_t)(i + 1);
	n = decode_wire(w, size, &o, "eth0", r, sizeof(*r));
	assert_int_equal(n, offsetof(struct pkt_record, hdr) + 52);
	assert_int_equal(r->ts_ns, 123456789);
	assert_int_equal(r->kind, PKT_REC_PACKET);
	assert_int_equal(r->flags, PKT_F_HELD);
	assert_int_equal(r->hdr_len, 52);
	assert_int_equal(r->pkt_len, 152);
	assert_int_equal(r->ifindex, 3);
	assert_int_equal(r->netns, 4026531840u);
	assert_int_equal(r->direction, PKT_EGRESS);
	assert_int_equal(r->owner.pid, 42);
	assert_string_equal(r->owner.comm, "task42");
	assert_string_equal(r->ifname, "eth0");
	assert_memory_equal(r->hdr, w->hdr, 52);
	/* --snaplen: snap_len and snap[] follow hdr[] alike. */
	w->snap_len = 5;
	memcpy(w->snap, "hello", 5);
	n = decode_wire(w, offsetof(struct pkt_wire, snap) + 128, NULL, NULL, r, sizeof(*r));
	assert_int_equal(n, offsetof(struct pkt_record, snap) + 128);
	assert_int_equal(r->snap_len, 5);
	assert_memory_equal(r->snap, "hello", 5);
	assert_int_equal(r->owner.pid, 0);
	assert_string_equal(r->ifname, "");
	/* Too short, too long, another kind, no room: malformed, nothing read past the end. */
	assert_int_equal(decode_wire(w, offsetof(struct pkt_wire, hdr) - 1, &o, "lo", r, sizeof(*r)),
			 -DECODE_BAD_RECORD);
	assert_int_equal(decode_wire(w, sizeof(*w) + 1, &o, "lo", r, sizeof(*r)), -DECODE_BAD_RECORD);
	assert_int_equal(decode_wire(w, size, &o, "lo", r, offsetof(struct pkt_record, hdr) + 51),
			 -DECODE_BAD_RECORD);
	w->kind = PKT_REC_FLOW;
	assert_int_equal(decode_wire(w, size, &o, "lo", r, sizeof(*r)), -DECODE_BAD_RECORD);
	free(w);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_two_generations),
		cmocka_unit_test(test_full_generation),
		cmocka_unit_test(test_decode_wire),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
