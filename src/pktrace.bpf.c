// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Kernel side of pktrace: socket owners from task-context hooks, packets from cgroup_skb. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "pktrace.h"

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPV6_HOPOPTS 0
#define IPV6_ROUTING 43
#define IPV6_FRAGMENT 44
#define IPV6_DSTOPTS 60
#define IPV6_EXT_MAX 8 /* extension headers walked before giving up */
#define UTS_NAME_LEN 65
#define E2BIG 7
/* Ring-buffer space one record takes: the record and its 8-byte header. */
#define RINGBUF_SLOT (sizeof(struct pkt_record) + 8)

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by user space between open and load. */
const volatile __u32 self_tgid = 0;
const volatile bool scope_by_pid = false;
const volatile bool scope_by_comm = false;
const volatile bool scope_by_uid = false;
const volatile bool follow_forks = false; /* -- COMMAND: children of traced pids join the scope */
const volatile __u64 wakeup_bytes = 1024 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct pkt_owner);
} sk_owner SEC(".maps");

/* Acceptors recorded at accept() exit, keyed by socket inode, until the socket's next packet. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pkt_owner);
} accept_owner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} scope_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[PKT_COMM_LEN]);
	__type(value, __u8);
} scope_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} scope_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, char[UTS_NAME_LEN]);
} uts_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline bool owner_in_scope(const struct pkt_owner *o)
{
	if (o->pid == self_tgid)
		return false;
	if (scope_by_pid && !bpf_map_lookup_elem(&scope_pids, &o->pid))
		return false;
	if (scope_by_comm && !bpf_map_lookup_elem(&scope_comms, o->comm))
		return false;
	if (scope_by_uid && !bpf_map_lookup_elem(&scope_uids, &o->uid))
		return false;
	return true;
}

static __always_inline void uts_name_remember(struct task_struct *task, __u32 inum)
{
	char name[UTS_NAME_LEN];

	if (bpf_map_lookup_elem(&uts_names, &inum))
		return;
	if (bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(task, nsproxy, uts_ns,
									name.nodename)) < 0)
		return;
	bpf_map_update_elem(&uts_names, &inum, name, BPF_NOEXIST);
}

/* Fill an owner record from the task running now (task-context hooks only). */
static __always_inline void owner_from_current(struct pkt_owner *o)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();

	o->pid = id >> 32;
	o->tid = (__u32)id;
	o->ppid = BPF_CORE_READ(task, real_parent, tgid);
	o->uid = (__u32)bpf_get_current_uid_gid();
	o->cgroup_id = bpf_get_current_cgroup_id();
	o->uts_inum = BPF_CORE_READ(task, nsproxy, uts_ns, ns.inum);
	bpf_get_current_comm(o->comm, sizeof(o->comm));
	o->traced = owner_in_scope(o);
	uts_name_remember(task, o->uts_inum);
}

SEC("cgroup/sock_create")
int owner_sock_create(struct bpf_sock *sk)
{
	struct pkt_owner *o;

	if (sk->protocol != IPPROTO_TCP || (sk->family != AF_INET && sk->family != AF_INET6))
		return 1;
	o = bpf_sk_storage_get(&sk_owner, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return 1;
	owner_from_current(o);
	o->cookie = bpf_get_socket_cookie(sk);
	return 1;
}

/* accept() returned a new fd: remember the acceptor against the socket's inode. */
static __always_inline int owner_accept_exit(long ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct pkt_owner o = {};
	struct socket *sock;
	struct file **fds;
	struct file *file;
	__u64 ino;

	if (ret < 0)
		return 0;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[ret]) || !file)
		return 0;
	/* Only TCP sockets: other accepts (AF_UNIX servers) would churn the table. */
	sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	ino = BPF_CORE_READ(file, f_inode, i_ino);
	if (!ino)
		return 0;
	owner_from_current(&o);
	bpf_map_update_elem(&accept_owner, &ino, &o, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int owner_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return owner_accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int owner_accept(struct trace_event_raw_sys_exit *ctx)
{
	return owner_accept_exit(ctx->ret);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(scope_follow_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	__u8 one = 1;

	if (!follow_forks || ptgid == ctgid || !bpf_map_lookup_elem(&scope_pids, &ptgid))
		return 0;
	if (bpf_map_update_elem(&scope_pids, &ctgid, &one, BPF_ANY))
		stat_inc(STAT_FOLLOW_FULL);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(scope_forget_exit, struct task_struct *task, bool group_dead)
{
	__u32 tgid = task->tgid;

	/* A followed process leaves the scope when its last thread exits, so a reused pid is not
	 * traced; a leader thread exiting alone (pthread_exit) does not end the process. */
	if (follow_forks && group_dead)
		bpf_map_delete_elem(&scope_pids, &tgid);
	return 0;
}

/* Sockets that existed before pktrace started, keyed by socket inode: the first task holding
 * one owns it. Read lazily by the socket's next packet, since this kernel does not let an
 * iterator reach a socket's storage (sock->sk is an untrusted pointer here). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, __u64);
	__type(value, struct pkt_owner);
} existing_owner SEC(".maps");

SEC("iter/task_file")
int owner_existing(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct pkt_owner o = {};
	struct socket *sock;
	struct sock *sk;
	__u16 family;
	__u64 ino;

	if (!task || !file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk;
	if (!sk || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	ino = file->f_inode->i_ino;
	o.pid = task->tgid;
	o.tid = task->pid;
	o.ppid = task->real_parent->tgid;
	o.uid = task->cred->uid.val;
	o.cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	o.uts_inum = task->nsproxy->uts_ns->ns.inum;
	bpf_probe_read_kernel_str(o.comm, sizeof(o.comm), task->comm);
	o.traced = owner_in_scope(&o);
	uts_name_remember(task, o.uts_inum);
	if (bpf_map_update_elem(&existing_owner, &ino, &o, BPF_NOEXIST) == -E2BIG)
		stat_inc(STAT_EXISTING_FULL);
	return 0;
}

/* Inode of a TCP socket's file, or 0 (no file: not yet accepted, or closed). */
static __always_inline __u64 sock_ino(struct bpf_sock *sk)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	struct socket *sock;

	if (!tp)
		return 0;
	sock = tp->inet_conn.icsk_inet.sk.sk_socket;
	if (!sock || !sock->file)
		return 0;
	return sock->file->f_inode->i_ino;
}

/* Move an owner recorded by inode (accept exit, or a socket older than pktrace) into the
 * socket's storage; NULL when there is none. */
static __always_inline struct pkt_owner *owner_by_ino(void *map, struct bpf_sock *sk,
						      __u64 cookie, struct pkt_owner *o, __u32 stat)
{
	struct pkt_owner *found;
	__u64 ino = sock_ino(sk);

	if (!ino)
		return NULL;
	found = bpf_map_lookup_elem(map, &ino);
	if (!found)
		return NULL;
	if (!o)
		o = bpf_sk_storage_get(&sk_owner, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return NULL;
	*o = *found;
	o->cookie = cookie;
	bpf_map_delete_elem(map, &ino);
	stat_inc(stat);
	return o;
}

/* Offset of the TCP header, or -1 when the packet carries none (not TCP, a later fragment). */
static __always_inline int tcp_offset(struct __sk_buff *skb, __u8 *l3)
{
	__u8 b[8];
	int off, i;
	__u8 nh;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return -1;
		*l3 = 4;
		if (ip.protocol != IPPROTO_TCP || (ip.frag_off & bpf_htons(0x1fff)))
			return -1;
		return ip.ihl * 4;
	}
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return -1;
	*l3 = 6;
	if (bpf_skb_load_bytes(skb, 6, &nh, 1))
		return -1;
	off = sizeof(struct ipv6hdr);
	for (i = 0; i < IPV6_EXT_MAX; i++) {
		if (nh == IPPROTO_TCP)
			return off;
		if (bpf_skb_load_bytes(skb, off, b, sizeof(b)))
			return -1;
		switch (nh) {
		case IPV6_HOPOPTS:
		case IPV6_ROUTING:
		case IPV6_DSTOPTS:
			off += (b[1] + 1) * 8;
			break;
		case IPV6_FRAGMENT:
			if ((b[2] << 8 | b[3]) & 0xfff8)
				return -1;
			off += 8;
			break;
		case IPPROTO_AH:
			off += (b[1] + 2) * 4;
			break;
		default:
			return -1;
		}
		nh = b[0];
	}
	return nh == IPPROTO_TCP ? off : -1;
}

/* Reserve a record with room for hdr_room header bytes (a constant), fill and submit it. */
static __always_inline int emit_record(struct __sk_buff *skb, const struct pkt_owner *o,
				       __u8 direction, __u8 l3, __u64 len, const __u32 hdr_room)
{
	struct pkt_record *rec;
	struct sk_buff *kskb;
	struct net_device *dev;
	__u64 avail;

	rec = bpf_ringbuf_reserve(&events, offsetof(struct pkt_record, hdr) + hdr_room, 0);
	if (!rec) {
		stat_inc(STAT_LOST_RINGBUF);
		return 1;
	}
	rec->ts_ns = bpf_ktime_get_boot_ns();
	rec->owner = *o;
	rec->pkt_len = skb->len;
	rec->ifindex = skb->ifindex;
	rec->direction = direction;
	rec->l3_proto = l3;
	rec->pad = 0;
	rec->ifname[0] = 0;
	kskb = bpf_cast_to_kern_ctx(skb);
	dev = kskb->dev;
	/* Two plain 8-byte loads: cheaper than a string-copy helper; user space stops at the NUL. */
	if (dev) {
		__u64 *dst = (__u64 *)rec->ifname;

		dst[0] = *(__u64 *)&dev->name[0];
		dst[1] = *(__u64 *)&dev->name[8];
	}
	barrier_var(len);
	if (len > hdr_room)
		len = hdr_room;
	/* An unreadable header leaves hdr_len 0: user space counts it as a decode error, once. */
	if (len < 1 || bpf_skb_load_bytes(skb, 0, rec->hdr, len))
		len = 0;
	rec->hdr_len = len;
	stat_inc(STAT_EVENTS);
	/* Wake the reader each time the backlog grows by another batch, not per record (an IRQ
	 * each); the window of two slots tolerates another CPU reserving in between. */
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (avail >= wakeup_bytes && avail % wakeup_bytes < 2 * RINGBUF_SLOT)
		bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	else
		bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	return 1;
}

static __always_inline int handle_skb(struct __sk_buff *skb, __u8 direction)
{
	struct pkt_owner *o, none = {};
	struct bpf_sock *sk;
	__u64 cookie, len;
	__u8 l3 = 0, doff;
	int off;

	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return 1;
	stat_inc(STAT_PACKETS);

	cookie = bpf_get_socket_cookie(skb);
	o = bpf_sk_storage_get(&sk_owner, sk, 0, 0);
	/* A record cloned from the listener, or none: the acceptor may be known by now. */
	if (!o || o->cookie != cookie) {
		struct pkt_owner *found = owner_by_ino(&accept_owner, sk, cookie, o,
						       STAT_ACCEPT_MOVED);

		if (!found && !o)
			found = owner_by_ino(&existing_owner, sk, cookie, o, STAT_EXISTING_MOVED);
		if (found)
			o = found;
	}
	if (!o) {
		stat_inc(STAT_NO_OWNER);
		if (scope_by_pid || scope_by_comm || scope_by_uid)
			return 1;
		o = &none;
	} else if (!o->traced) {
		stat_inc(STAT_OUT_OF_SCOPE);
		return 1;
	}

	off = tcp_offset(skb, &l3);
	if (off < 0) {
		stat_inc(STAT_NOT_TCP);
		return 1;
	}
	if (bpf_skb_load_bytes(skb, off + 12, &doff, 1))
		doff = 5 << 4;
	len = off + (doff >> 4) * 4;
	if (len < (__u64)off + 20)
		len = off + 20;
	if (len > skb->len)
		len = skb->len;
	if (len > PKT_HDR_MAX) {
		stat_inc(STAT_HDR_TRUNCATED);
		len = PKT_HDR_MAX;
	}

	/* Most headers fit the small record: less ring space and memory traffic per packet. */
	if (len <= PKT_HDR_SMALL)
		return emit_record(skb, o, direction, l3, len, PKT_HDR_SMALL);
	return emit_record(skb, o, direction, l3, len, PKT_HDR_MAX);
}

SEC("cgroup_skb/ingress")
int capture_ingress(struct __sk_buff *skb)
{
	return handle_skb(skb, PKT_INGRESS);
}

SEC("cgroup_skb/egress")
int capture_egress(struct __sk_buff *skb)
{
	return handle_skb(skb, PKT_EGRESS);
}
