/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Classic BPF (from libpcap) translated into an eBPF cgroup_skb program. */
#ifndef PKTRACE_FILTER_BPF_H
#define PKTRACE_FILTER_BPF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/bpf.h>

#include "filter.h"

/* Where the program sends its verdicts: a match tail-calls progs_fd[accept_slot] (the capture
 * program of the hook), a miss adds one to counter reject_stat of this CPU's
 * struct pkt_cpu_stats in stats_fd (an array indexed by CPU) and lets the packet go. The fds are written into the instructions (BPF_PSEUDO_MAP_FD). */
struct filter_target {
	int stats_fd;
	uint32_t reject_stat;
	int progs_fd;
	uint32_t accept_slot;
	uint32_t reject_slot; /* not 0: a miss, once counted, tail-calls progs_fd[reject_slot] */
};

/* Translate p into *insns (malloc'd, *n of them). 0, or -errno with a one-line reason in err. */
int filter_to_ebpf(const struct filter_prog *p, const struct filter_target *t,
		   struct bpf_insn **insns, size_t *n, char *err, size_t err_len);
/* One line per instruction, for --dump-filter. */
void filter_dump_ebpf(const struct bpf_insn *insns, size_t n, FILE *out);

#endif /* PKTRACE_FILTER_BPF_H */
