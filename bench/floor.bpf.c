// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The bench's floor reference: empty programs on the hooks of pktrace's programs, declared the
 * same way (tp_btf with BPF_PROG and the same arguments, cgroup_skb). The kernel's BPF
 * statistics count, for every run of any program, the call into it and the statistics' own
 * clock reads; these programs do nothing else, so their ns per run is what pktrace's program
 * on the same hook would show if it cost nothing. bench/run.sh subtracts it. The floor run
 * attaches the first two (owner_send's and owner_recv's hooks: what -e flows attaches), the
 * floor-hooks run all six (every hook pktrace runs on per packet). */
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

/* capture_ingress's and capture_egress's hooks (attached to the cgroup v2 root, as pktrace's) */
SEC("cgroup_skb/ingress")
int floor_skb_in(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/egress")
int floor_skb_eg(struct __sk_buff *skb)
{
	return 1;
}

/* capture_dev_ingress's and capture_dev_egress's */
SEC("tp_btf/netif_receive_skb")
int BPF_PROG(floor_dev_in, struct sk_buff *skb)
{
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(floor_dev_eg, struct sk_buff *skb)
{
	return 0;
}
