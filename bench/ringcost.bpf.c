// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* What writing one packet record costs, by transport: a cgroup_skb egress program that writes
 * a 128-byte record (pktrace's tiny packet record, ring header included) for every packet, in
 * one of four ways chosen by `mode` (set by bench/ringcost.c before load):
 *   0 nothing (the hook's own floor)
 *   1 a BPF ring buffer per CPU: reserve, fill, submit without wakeup (pktrace's transport)
 *   2 a ring per CPU in an mmapable array: the position taken with one atomic add, the record
 *     filled, its first word written last (the reader stops at a zero first word)
 *   3 bpf_perf_event_output of a record built on the stack
 * The kernel's BPF statistics give the ns per run of each; bench/ringcost.c compares them. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "ringcost.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 mode = 0;

struct cpu_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGCOST_RING_BYTES);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1); /* the possible CPUs (user space) */
	__type(key, __u32);
	__array(values, struct cpu_ring);
} rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* the possible CPUs (user space) */
	__type(key, __u32);
	__type(value, struct ringcost_own);
} own SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf SEC(".maps");

/* Words 1 to n - 1 of a record (word 0 is the timestamp, written last). */
static __always_inline void fill(__u64 *r, int n, struct __sk_buff *skb)
{
	for (int i = 2; i < n; i++)
		r[i] = i;
	r[1] = skb->len;
}

SEC("cgroup_skb/egress")
int ringcost(struct __sk_buff *skb)
{
	__u32 cpu = bpf_get_smp_processor_id();

	if (mode == 1) {
		void *ring = bpf_map_lookup_elem(&rings, &cpu);
		__u64 *r;

		if (!ring)
			return 1;
		r = bpf_ringbuf_reserve(ring, RINGCOST_RECORD - 8, 0); /* + its 8-byte header */
		if (!r)
			return 1;
		fill(r, RINGCOST_RECORD / 8 - 1, skb);
		r[0] = bpf_ktime_get_boot_ns();
		bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	} else if (mode == 2) {
		struct ringcost_own *o = bpf_map_lookup_elem(&own, &cpu);
		__u64 pos, *r;

		if (!o)
			return 1;
		/* A full ring loses the record (the reader keeps up here: a probe, not a product). */
		if (o->head - o->tail > RINGCOST_OWN_BYTES - 4 * RINGCOST_RECORD)
			return 1;
		pos = __sync_fetch_and_add(&o->head, RINGCOST_RECORD);
		r = (__u64 *)&o->data[pos & (RINGCOST_OWN_BYTES - 1) & ~(__u64)(RINGCOST_RECORD - 1)];
		fill(r, RINGCOST_RECORD / 8, skb);
		asm volatile("" ::: "memory"); /* the first word last: x86 keeps stores in order */
		r[0] = bpf_ktime_get_boot_ns();
	} else if (mode == 3) {
		__u64 r[RINGCOST_RECORD / 8 - 1]; /* perf adds its own header */

		fill(r, RINGCOST_RECORD / 8 - 1, skb);
		r[0] = bpf_ktime_get_boot_ns();
		bpf_perf_event_output(skb, &perf, BPF_F_CURRENT_CPU, r, sizeof(r));
	}
	return 1;
}
