/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Shared by bench/ringcost.bpf.c and bench/ringcost.c. */
#ifndef PKTRACE_RINGCOST_H
#define PKTRACE_RINGCOST_H

#define RINGCOST_RECORD 128                /* bytes a record takes in any transport */
#define RINGCOST_RING_BYTES (4u << 20)     /* each CPU's BPF ring buffer, as pktrace's default */
#define RINGCOST_OWN_BYTES (2u << 20)      /* each CPU's own ring (an array value: at most 4 MiB) */

/* One CPU's own ring: the writers' position and the reader's on lines of their own. */
struct ringcost_own {
	__u64 head;
	__u64 pad0[7];
	__u64 tail;
	__u64 pad1[7];
	__u8 data[RINGCOST_OWN_BYTES];
};

#endif /* PKTRACE_RINGCOST_H */
