// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The bench's floor reference: empty programs on the hooks of pktrace's owner_send and
 * owner_recv, declared the same way (tp_btf, BPF_PROG with the same arguments). The kernel's
 * BPF statistics count, for every run of any program, the call into it and the statistics'
 * own clock reads; these programs do nothing else, so their ns per run is what owner_send and
 * owner_recv would show if they cost nothing. bench/run.sh subtracts it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sock_send_length")
int BPF_PROG(floor_send, struct sock *sk, int ret, int flags)
{
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(floor_recv, struct sock *sk, int ret, int flags)
{
	return 0;
}
