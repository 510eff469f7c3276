// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#define _GNU_SOURCE /* unshare, CLONE_NEWNS */
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture.h"
#include "filter_bpf.h"
#include "pktrace.skel.h"
#include "rings.h"

_Static_assert(CAPTURE_AGAIN == RINGS_AGAIN, "one meaning for both");

/* A filter's programs and what they need, per direction (enum pkt_direction). */
struct capture_filter {
	int progs_fd; /* prog array: slot 0 holds the direction's capture program */
	int prog_fd;  /* the translated expression, attached in the capture program's place */
	int link_fd;
};

struct capture {
	struct pktrace_bpf *skel;
	struct rings *rings;
	int *ring_fds; /* one ring buffer per possible CPU */
	size_t ring_bytes;
	size_t fast_bytes; /* each CPU's fast ring (pktrace.h); 0: none */
	int cgroup_fd;
	int ncpus;
	struct capture_filter filter[2];
	/* The connection filter's rotation (pktrace.h): when the next step is due, and whether
	 * a new generation is current and waits to be refilled. */
	uint64_t filter_due_ns, filter_period_ns;
	bool filter_refill;
	/* Owner definitions: the floor was raised, the ring positions are to be noted (when the
	 * programs that read the old floor are done: a millisecond later, at the next upkeep). */
	bool owner_mark_due;
	char cgroup_path[4096];
};

/* A new generation of the connection filter this often (the end-to-end tests shorten it with
 * PKTRACE_TEST_FILTER_PERIOD_MS); its refill this long after the switch, when no program still
 * sets bits in the old one (a program runs for microseconds). */
#define CONN_FILTER_PERIOD_NS (30 * 1000000000ULL)
#define CONN_FILTER_GRACE_NS (10 * 1000000ULL)
#define CONN_FILTER_BATCH 1024

static const enum bpf_attach_type filter_attach[2] = {BPF_CGROUP_INET_INGRESS,
						      BPF_CGROUP_INET_EGRESS};
static const char *const filter_names[2] = {"filter_ingress", "filter_egress"};

static bool has_cap(int cap)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[cap / 32].effective & (1U << (cap % 32));
}

/* The first cgroup v2 mount this process sees (path "" if none). */
static int cgroup2_mount_seen(char *path, size_t len)
{
	struct mntent *m;
	FILE *f = setmntent("/proc/self/mounts", "r");

	path[0] = '\0';
	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(path, len, "%s", m->mnt_dir);
			break;
		}
	}
	endmntent(f);
	return path[0] ? 0 : -ENOENT;
}

/* The cgroup v2 mount: /sys/fs/cgroup on unified systems, .../unified on hybrid ones. None
 * visible (`ip netns exec` mounts a /sys of its own, without the cgroup mounts): the hierarchy
 * mounted on /sys/fs/cgroup in a mount namespace of pktrace's own, which nothing else sees and
 * which ends with it (a command given was started before, in the caller's). */
static int cgroup2_path(char *path, size_t len)
{
	const char *dir = "/sys/fs/cgroup";

	if (!cgroup2_mount_seen(path, len))
		return 0;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("cgroup2", dir, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		return -errno;
	snprintf(path, len, "%s", dir);
	return 0;
}

static int check_prerequisites(char *cgpath, size_t len)
{
	int err;

	if (!has_cap(CAP_SYS_ADMIN) && !(has_cap(CAP_BPF) && has_cap(CAP_PERFMON) &&
					  has_cap(CAP_NET_ADMIN))) {
		fprintf(stderr, "pktrace: needs root (CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON "
				"and CAP_NET_ADMIN) to load BPF programs: run it as root (or with sudo)\n");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		fprintf(stderr, "pktrace: the kernel has no BTF (/sys/kernel/btf/vmlinux missing): "
				"a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed\n");
		return -ENOENT;
	}
	err = cgroup2_path(cgpath, len);
	if (err) {
		fprintf(stderr, "pktrace: no cgroup v2 hierarchy is mounted, and mounting one on "
				"/sys/fs/cgroup failed (%s): mount one with 'mount -t cgroup2 none "
				"/sys/fs/cgroup/unified'\n", strerror(-err));
		return -ENOENT;
	}
	return 0;
}

/* capture_config.stopping of the capture being opened. */
static const volatile sig_atomic_t *stopping;

static bool stop_came(void)
{
	return stopping && *stopping;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && !getenv("PKTRACE_DEBUG")) ||
	    stop_came())
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* A number from a /proc/sys file, or def when it cannot be read. */
static unsigned long long sysctl_read(const char *path, unsigned long long def)
{
	unsigned long long v;
	FILE *f = fopen(path, "re");
	int n;

	if (!f)
		return def;
	n = fscanf(f, "%llu", &v);
	fclose(f);
	return n == 1 ? v : def;
}

static unsigned long long clamp_ull(unsigned long long v, unsigned long long lo,
				    unsigned long long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Tables whose overflow would cost an owner are as large as the kernel's own limits: every
 * pid (a followed command), every timewait or orphaned connection the kernel may keep. */
static int tables_size(struct pktrace_bpf *skel)
{
	unsigned long long pids, gone, closed;

	pids = sysctl_read("/proc/sys/kernel/pid_max", 4194304);
	/* Connections its process closed first: timewait sockets and the orphans on their way. */
	closed = sysctl_read("/proc/sys/net/ipv4/tcp_max_orphans", 262144);
	gone = sysctl_read("/proc/sys/net/ipv4/tcp_max_tw_buckets", 262144) + closed;
	/* Connections closed without timewait: as many as may be closing at once (orphans). */
	if (bpf_map__set_max_entries(skel->maps.scope_pids, clamp_ull(pids, 1024, 1u << 23)) ||
	    bpf_map__set_max_entries(skel->maps.gone_conns, clamp_ull(gone, 4096, 1u << 21)) ||
	    bpf_map__set_max_entries(skel->maps.closed_conns, clamp_ull(closed, 4096, 1u << 20)))
		return -errno;
	return 0;
}

static int scope_fill(struct capture *c, const struct scope *s, pid_t follow_pid)
{
	__u8 one = 1;
	int i, fd;

	fd = bpf_map__fd(c->skel->maps.scope_pids);
	for (i = 0; i < s->n_pids; i++)
		if (bpf_map_update_elem(fd, &s->pids[i], &one, BPF_ANY))
			return -errno;
	if (follow_pid > 0 && bpf_map_update_elem(fd, &follow_pid, &one, BPF_ANY))
		return -errno;
	fd = bpf_map__fd(c->skel->maps.scope_comms);
	for (i = 0; i < s->n_comms; i++) {
		char key[PKT_COMM_LEN] = {};

		strncpy(key, s->comms[i], sizeof(key) - 1);
		if (bpf_map_update_elem(fd, key, &one, BPF_ANY))
			return -errno;
	}
	fd = bpf_map__fd(c->skel->maps.scope_uids);
	for (i = 0; i < s->n_uids; i++)
		if (bpf_map_update_elem(fd, &s->uids[i], &one, BPF_ANY))
			return -errno;
	return 0;
}

/* Run the task_file iterator once: it gives sockets opened before pktrace an owner. */
static int attribute_existing(struct capture *c)
{
	struct bpf_link *link;
	char buf[256];
	int fd, n, err = 0;

	link = bpf_program__attach_iter(c->skel->progs.owner_existing, NULL);
	if (!link)
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	/* The kernel returns EAGAIN every million objects when the program printed nothing. */
	while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EAGAIN))
		;
	if (n < 0)
		err = -errno;
	close(fd);
out:
	bpf_link__destroy(link);
	return err;
}

/* The verifier's reason in its log: the last line before its statistics (the kernel keeps the
 * log's end when it does not fit). */
static const char *verifier_reason(char *log)
{
	char *line = NULL, *p = log, *nl;

	while (*p) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = 0;
		if (*p && strncmp(p, "processed ", 10) && strncmp(p, "verification time", 17))
			line = p;
		if (!nl)
			break;
		p = nl + 1;
	}
	return line ? line : "";
}

/*
 * Translate the filter and load it, one program per direction: it runs in the socket hook in
 * the capture program's place and tail-calls it for the packets it wants (at egress, with ICMP
 * errors tracked, capture_egress_rejected for the others). Each direction has
 * its own prog array, since a tail call needs the caller's and callee's attach types to match.
 * Prints one line on failure.
 */
static int filters_load(struct capture *c, const struct filter *f, bool icmp_errors)
{
	struct bpf_program *capture_prog[2] = {c->skel->progs.capture_ingress,
					       c->skel->progs.capture_egress};
	static char log[1 << 20];
	char err[256];
	__u32 zero = 0;
	int d, fd, rejected_fd, rc;

	for (d = 0; d < 2; d++) {
		LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = filter_attach[d]);
		struct capture_filter *cf = &c->filter[d];
		struct filter_target t;
		struct bpf_insn *insns;
		size_t n;

		/* Slot 0: the capture program, for what the expression takes; slot 1 (egress, with
		 * ICMP errors tracked): the bookkeeping of what it rejects. */
		bool book = d == PKT_EGRESS && icmp_errors;
		__u32 one = 1;

		cf->progs_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, filter_names[d], 4, 4, 2,
					      NULL);
		fd = bpf_program__fd(capture_prog[d]);
		rejected_fd = book ? bpf_program__fd(c->skel->progs.capture_egress_rejected) : -1;
		if (cf->progs_fd < 0 || bpf_map_update_elem(cf->progs_fd, &zero, &fd, BPF_ANY) ||
		    (book && bpf_map_update_elem(cf->progs_fd, &one, &rejected_fd, BPF_ANY))) {
			rc = -errno;
			fprintf(stderr, "pktrace: cannot set up the %s filter's tail call: %s\n",
				d == PKT_INGRESS ? "ingress" : "egress", strerror(errno));
			return rc;
		}
		t = (struct filter_target){bpf_map__fd(c->skel->maps.stats), STAT_FILTER_REJECTED,
					   cf->progs_fd, 0, book ? 1 : 0};
		rc = filter_to_ebpf(&f->dir[d], &t, &insns, &n, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "pktrace: filter '%s': %s\n", filter_short(f->expr), err);
			return rc;
		}
		cf->prog_fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, filter_names[d], "Dual BSD/GPL",
					    insns, n, &o);
		if (cf->prog_fd < 0) {
			rc = -errno;
			if (stop_came()) {
				free(insns);
				return rc;
			}
			/* again with the verifier's log, for its last line */
			o.log_buf = log;
			o.log_size = sizeof(log);
			o.log_level = 1;
			log[0] = 0;
			fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, filter_names[d], "Dual BSD/GPL",
					   insns, n, &o);
			if (fd >= 0)
				close(fd);
			fprintf(stderr, "pktrace: filter '%s': the kernel refused its %s program (%zu "
					"instructions): %s%s%s\n", filter_short(f->expr),
				d == PKT_INGRESS ? "ingress" : "egress", n, strerror(-rc),
				log[0] ? "; the verifier: " : "", verifier_reason(log));
			free(insns);
			return rc;
		}
		free(insns);
	}
	return 0;
}

/* The socket hooks: the filter programs when there is a filter, else the capture programs. */
static int packet_hooks_attach(struct capture *c, const struct filter *f)
{
	int d;

	if (!f) {
		c->skel->links.capture_ingress =
			bpf_program__attach_cgroup(c->skel->progs.capture_ingress, c->cgroup_fd);
		c->skel->links.capture_egress =
			bpf_program__attach_cgroup(c->skel->progs.capture_egress, c->cgroup_fd);
		return c->skel->links.capture_ingress && c->skel->links.capture_egress ? 0 : -errno;
	}
	for (d = 0; d < 2; d++) {
		c->filter[d].link_fd = bpf_link_create(c->filter[d].prog_fd, c->cgroup_fd,
						       filter_attach[d], NULL);
		if (c->filter[d].link_fd < 0)
			return -errno;
	}
	return 0;
}

/* Bytes of each CPU's ring buffer: -B (total) split between the CPUs, each a power of two and
 * at least a page; by default 8 MiB in all, but at least 1 MiB each. */
static size_t ring_size(unsigned long long total, int ncpus)
{
	unsigned long long each, min = (unsigned long long)getpagesize();
	size_t bytes = 1;

	if (!total) {
		total = 8ULL << 20;
		min = 1ULL << 20;
	}
	each = ncpus > 0 ? (total + ncpus - 1) / ncpus : total;
	if (each < min)
		each = min;
	while (bytes < each)
		bytes <<= 1;
	return bytes;
}

/* One ring buffer per possible CPU, in the slot of the array the programs look it up in. */
static int rings_create(struct capture *c)
{
	int outer = bpf_map__fd(c->skel->maps.rings);

	c->ring_fds = calloc(c->ncpus, sizeof(*c->ring_fds));
	if (!c->ring_fds)
		return -1;
	for (int i = 0; i < c->ncpus; i++)
		c->ring_fds[i] = -1;
	for (int i = 0; i < c->ncpus; i++) {
		c->ring_fds[i] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "pktrace_ring", 0, 0,
						c->ring_bytes, NULL);
		if (c->ring_fds[i] < 0 || bpf_map_update_elem(outer, &i, &c->ring_fds[i], BPF_ANY))
			return -1;
	}
	return 0;
}

static int on_ringbuf(void *ctx, const void *data, size_t size)
{
	struct capture_config *cfg = ctx;

	return cfg->on_record(cfg->ctx, data, size);
}

struct capture *capture__open(const struct capture_config *cfg)
{
	static struct capture_config config;
	struct capture *c;
	const char *step;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	err = check_prerequisites(c->cgroup_path, sizeof(c->cgroup_path));
	if (err) {
		free(c);
		errno = -err;
		return NULL;
	}
	stopping = cfg->stopping;
	libbpf_set_print(libbpf_print);
	config = *cfg;

	c->cgroup_fd = -1;
	c->ncpus = libbpf_num_possible_cpus();
	for (int d = 0; d < 2; d++)
		c->filter[d] = (struct capture_filter){-1, -1, -1};

	step = "open the BPF object";
	c->skel = pktrace_bpf__open();
	if (!c->skel)
		goto fail;
	c->skel->rodata->self_tgid = getpid();
#ifdef PKTRACE_FAULT_MISS_CLOSES
	c->skel->rodata->fault_fin = getenv("PKTRACE_FAULT_FIN") != NULL; /* the test build */
#endif
	c->skel->rodata->scope_by_pid = cfg->scope->n_pids > 0 || cfg->follow_pid > 0;
	c->skel->rodata->scope_by_comm = cfg->scope->n_comms > 0;
	c->skel->rodata->scope_by_uid = cfg->scope->n_uids > 0;
	c->skel->rodata->follow_forks = cfg->follow_pid > 0;
	c->skel->rodata->packet_events = cfg->packet_events;
	c->skel->rodata->flow_events = cfg->flow_events;
	c->skel->rodata->sock_protos = cfg->sock_protos;
	c->skel->rodata->icmp_errors = cfg->icmp_errors;
	c->skel->rodata->if_index = cfg->if_index;
	c->skel->rodata->if_netns = cfg->if_netns;
	if (cfg->directions)
		c->skel->rodata->directions = cfg->directions;
	c->skel->rodata->once = cfg->once;
	c->skel->rodata->snaplen = cfg->snaplen;
	step = "draw the key of the revived connections' hashes (getrandom)";
	if (getrandom((void *)c->skel->rodata->revived_key, sizeof(c->skel->rodata->revived_key),
		      0) != sizeof(c->skel->rodata->revived_key))
		goto fail;
	/* Only an egress filter with ICMP errors tracked tail-calls it (filters_load). */
	bpf_program__set_autoload(c->skel->progs.capture_egress_rejected,
				  cfg->filter && cfg->icmp_errors);
	step = "size the ring buffers (-B)";
	c->ring_bytes = ring_size(cfg->ringbuf_bytes, c->ncpus);
	/* (The kernel takes ring buffers of any size in the slots, whatever the template's.) */
	if (c->ncpus < 1 || bpf_map__set_max_entries(c->skel->maps.rings, c->ncpus) ||
	    bpf_map__set_max_entries(c->skel->maps.stats, c->ncpus) ||
	    bpf_map__set_max_entries(c->skel->maps.cpu_notes, c->ncpus)) {
		errno = EINVAL;
		goto fail;
	}
	/* The reader is woken each time another eighth of a CPU's ring buffer fills. */
	c->skel->rodata->wakeup_bytes = c->ring_bytes / 8;
	/* The fast rings, for the tiny packet records: half the ring buffer's size again, 64 KiB
	 * to 2 MiB a CPU (an array element is at most 4 MiB). The reader drains them at every
	 * pass (every BUSY_POLL_MS while records come); when one is full, records go to the ring
	 * buffer, which wakes the reader. */
	if (cfg->packet_events) {
		c->fast_bytes = c->ring_bytes / 2;
		if (c->fast_bytes < 64 * 1024)
			c->fast_bytes = 64 * 1024;
		if (c->fast_bytes > 2u << 20)
			c->fast_bytes = 2u << 20;
		if (bpf_map__set_value_size(c->skel->maps.fast_rings, PKT_FAST_CTL + c->fast_bytes) ||
		    bpf_map__set_max_entries(c->skel->maps.fast_rings, c->ncpus)) {
			errno = EINVAL;
			goto fail;
		}
		c->skel->rodata->fast_mask = c->fast_bytes - 1;
	}

	/* Not mmapable: the kernel then keeps the frozen settings in kmalloc'd memory (its
	 * direct map) instead of a vmalloc'd page, whose TLB miss after each syscall entry (PTI
	 * without PCID here) was a third of an egress hook run (perf). skel->rodata is NULL after
	 * the load. */
	bpf_map__set_map_flags(c->skel->maps.rodata,
			       bpf_map__map_flags(c->skel->maps.rodata) & ~BPF_F_MMAPABLE);
	bpf_map__set_map_flags(c->skel->maps.data_floor,
			       bpf_map__map_flags(c->skel->maps.data_floor) & ~BPF_F_MMAPABLE);
	bpf_map__set_map_flags(c->skel->maps.data_gen,
			       bpf_map__map_flags(c->skel->maps.data_gen) & ~BPF_F_MMAPABLE);

	step = "size the tables from the host's limits";
	if (tables_size(c->skel))
		goto fail;

	step = "load the BPF programs (see the kernel requirements in the README)";
	if (pktrace_bpf__load(c->skel))
		goto fail;
	step = "create the ring buffers (-B; they count against the locked-memory limit)";
	if (rings_create(c))
		goto fail;
	if (cfg->filter && cfg->packet_events) {
		err = filters_load(c, cfg->filter, cfg->icmp_errors);
		if (err) {
			/* said already */
			capture__destroy(c);
			errno = -err;
			return NULL;
		}
	}
	step = "fill the scope maps";
	err = scope_fill(c, cfg->scope, cfg->follow_pid);
	if (err) {
		errno = -err;
		goto fail;
	}

	step = "open the cgroup v2 root";
	c->cgroup_fd = open(c->cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->cgroup_fd < 0)
		goto fail;
	/* Links, not legacy attachments: they go away with the process, even on SIGKILL. */
	step = "attach the socket-creation hook";
	c->skel->links.owner_sock_create =
		bpf_program__attach_cgroup(c->skel->progs.owner_sock_create, c->cgroup_fd);
	if (!c->skel->links.owner_sock_create)
		goto fail;
	step = "attach the accept hooks (cgroup getpeername4/6)";
	c->skel->links.owner_peername4 =
		bpf_program__attach_cgroup(c->skel->progs.owner_peername4, c->cgroup_fd);
	c->skel->links.owner_peername6 =
		bpf_program__attach_cgroup(c->skel->progs.owner_peername6, c->cgroup_fd);
	if (!c->skel->links.owner_peername4 || !c->skel->links.owner_peername6)
		goto fail;
	step = "attach the send/receive, socket state and destruction, fork and exit tracepoints";
	c->skel->links.owner_send = bpf_program__attach(c->skel->progs.owner_send);
	c->skel->links.owner_recv = bpf_program__attach(c->skel->progs.owner_recv);
	/* In this order: the kernel runs a tracepoint's programs in the order they came, and
	 * conn_state_nested must run second (pktrace.bpf.c, conn_state_do). */
	c->skel->links.conn_state = bpf_program__attach(c->skel->progs.conn_state);
	c->skel->links.conn_state_nested = bpf_program__attach(c->skel->progs.conn_state_nested);
	c->skel->links.conn_destroy = bpf_program__attach(c->skel->progs.conn_destroy);
	c->skel->links.scope_follow_fork = bpf_program__attach(c->skel->progs.scope_follow_fork);
	c->skel->links.scope_forget_exit = bpf_program__attach(c->skel->progs.scope_forget_exit);
	if (!c->skel->links.owner_send || !c->skel->links.owner_recv ||
	    !c->skel->links.conn_state || !c->skel->links.conn_state_nested ||
	    !c->skel->links.conn_destroy ||
	    !c->skel->links.scope_follow_fork ||
	    !c->skel->links.scope_forget_exit)
		goto fail;
	/* Only when a packet event is selected: flow events alone cost the traffic nothing. */
	step = "attach the packet programs (cgroup_skb and the device tracepoints)";
	if (cfg->packet_events) {
		if (packet_hooks_attach(c, cfg->filter))
			goto fail;
		c->skel->links.capture_dev_ingress =
			bpf_program__attach(c->skel->progs.capture_dev_ingress);
		c->skel->links.capture_dev_egress =
			bpf_program__attach(c->skel->progs.capture_dev_egress);
		if (!c->skel->links.capture_dev_ingress || !c->skel->links.capture_dev_egress)
			goto fail;
	}
	step = "attribute sockets opened before pktrace started";
	err = attribute_existing(c);
	if (err) {
		errno = -err;
		goto fail;
	}
	step = "set up the ring buffers";
	{
		struct rings_fast fast = {bpf_map__fd(c->skel->maps.fast_rings), c->ncpus,
					  c->fast_bytes};

		c->rings = rings__new(c->ring_fds, c->ncpus, c->ring_bytes,
				      c->fast_bytes ? &fast : NULL, on_ringbuf, &config);
	}
	if (!c->rings)
		goto fail;
	return c;

fail:
	err = errno;
	if (!stop_came())
		fprintf(stderr, "pktrace: cannot %s: %s\n", step, strerror(err));
	capture__destroy(c);
	errno = err;
	return NULL;
}

int capture__poll(struct capture *c, int timeout_ms)
{
	/* The kernel side wakes the reader only per batch: each poll takes what is there, after
	 * a wakeup or the timeout. -EAGAIN: the callback ended a batch. */
	return rings__poll(c->rings, timeout_ms);
}

uint64_t capture__safe_ns(const struct capture *c)
{
	return c && c->rings ? rings__safe_ns(c->rings) : 0;
}

/* Set the bit of every connection the table holds (closed: closed_conns, whose bits are its
 * own) in generation gen (bits the programs may be setting at the same time). False: the table
 * could not be read. */
static bool conn_filter_refill(struct capture *c, int map_fd, bool closed, unsigned int gen)
{
	static struct pkt_conn keys[CONN_FILTER_BATCH];
	static struct pkt_owner values[CONN_FILTER_BATCH];
	__u64 (*words)[2] = c->skel->bss->conn_filter;
	struct pkt_conn in, out;
	void *batch = NULL;
	__u32 n, i, regions;
	int err;

	do {
		n = CONN_FILTER_BATCH;
		err = bpf_map_lookup_batch(map_fd, batch, &out, keys, values, &n, NULL);
		if (err && errno != ENOENT)
			return false;
		regions = 0;
		for (i = 0; i < n; i++) {
			__u32 bit = pkt_conn_filter_bit_in(&keys[i], closed);

			__atomic_fetch_or(&words[bit >> 6][gen], 1ULL << (bit & 63),
					  __ATOMIC_RELAXED);
			regions |= 1u << pkt_conn_filter_region(bit >> 6);
		}
		/* After the bits, as the programs do: a check that sees a region's mark sees them. */
		if (regions)
			__atomic_fetch_or((__u64 *)c->skel->bss->conn_filter_top,
					  (__u64)regions << pkt_conn_filter_half(gen),
					  __ATOMIC_SEQ_CST);
		in = out;
		batch = &in;
	} while (!err);
	return true;
}

void capture__tend(struct capture *c, uint64_t now_ns)
{
	struct pktrace_bpf__bss *bss = c->skel->bss;
	unsigned int gen = bss->conn_filter_gen & 1;

	/* Every record written under the old floor is before these positions: the upkeep runs
	 * between polls, at least a poll's wakeup after the floor moved. */
	if (c->owner_mark_due) {
		rings__mark(c->rings);
		c->owner_mark_due = false;
	}

	if (!c->filter_period_ns) {
		const char *ms = getenv("PKTRACE_TEST_FILTER_PERIOD_MS");

		c->filter_period_ns = ms && atoi(ms) > 0 ? atoi(ms) * 1000000ULL :
							    CONN_FILTER_PERIOD_NS;
		c->filter_due_ns = now_ns + c->filter_period_ns;
		return;
	}
	if (now_ns < c->filter_due_ns)
		return;
	if (!c->filter_refill) {
		/* The other generation is empty (cleared at the last refill): make it current. */
		__atomic_store_n(&bss->conn_filter_gen, gen ^ 1, __ATOMIC_SEQ_CST);
		c->filter_refill = true;
		c->filter_due_ns = now_ns + CONN_FILTER_GRACE_NS;
		return;
	}
	/* Every entry the tables hold into the current generation, then the old one cleared:
	 * bits of connections the tables let go are gone with it. */
	if (conn_filter_refill(c, bpf_map__fd(c->skel->maps.gone_conns), false, gen) &&
	    conn_filter_refill(c, bpf_map__fd(c->skel->maps.closed_conns), true, gen)) {
		/* No program writes the old generation any more (the grace period): its region
		 * marks go with its words, first. */
		__atomic_fetch_and((__u64 *)bss->conn_filter_top,
				   ~(0xffffffffULL << pkt_conn_filter_half(gen ^ 1)), __ATOMIC_SEQ_CST);
		for (size_t w = 0; w < PKT_CONN_FILTER_WORDS; w++)
			bss->conn_filter[w][gen ^ 1] = 0;
	}
	/* else the old generation stays as it is, checked along with the new one */
	c->filter_refill = false;
	c->filter_due_ns = now_ns + c->filter_period_ns;
}

void capture__detach(struct capture *c)
{
	struct bpf_link **links[] = {
		&c->skel->links.capture_ingress,     &c->skel->links.capture_egress,
		&c->skel->links.capture_dev_ingress, &c->skel->links.capture_dev_egress,
		&c->skel->links.owner_peername4,     &c->skel->links.owner_peername6,
		&c->skel->links.owner_send,          &c->skel->links.owner_recv,
		&c->skel->links.conn_state,          &c->skel->links.conn_state_nested,
	};
	size_t i;

	/* Packets and claims both stop: nothing is added to the ring buffer after this. */
	for (i = 0; i < 2; i++) {
		if (c->filter[i].link_fd >= 0)
			close(c->filter[i].link_fd);
		c->filter[i].link_fd = -1;
	}
	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		bpf_link__destroy(*links[i]);
		*links[i] = NULL;
	}
}

uint64_t capture__owner_seq(struct capture *c)
{
	return __atomic_load_n(&c->skel->bss->owner_seq, __ATOMIC_ACQUIRE);
}

void capture__owner_floor(struct capture *c, uint64_t floor)
{
	__u32 zero = 0;

	if (bpf_map__update_elem(c->skel->maps.data_floor, &zero, sizeof(zero), &floor,
				 sizeof(floor), BPF_ANY))
		fprintf(stderr, "pktrace: cannot raise the owner definitions' floor: %s\n",
			strerror(errno));
	c->owner_mark_due = true;
}

int capture__owner_floor_passed(struct capture *c)
{
	return !c->owner_mark_due && rings__passed(c->rings);
}

int capture__drain(struct capture *c)
{
	int n, total = 0;

	/* The programs are detached: a few passes take what a record waiting for its owner
	 * definition, or one still being written when the first began, held back. */
	for (int pass = 0; pass < 8; pass++) {
		n = rings__consume(c->rings);
		if (n <= 0)
			return n < 0 ? n : total;
		total += n;
	}
	return total;
}

uint64_t capture__skipped_runs(struct capture *c, char *which, size_t len, uint64_t *covered)
{
	struct bpf_program *prog;
	uint64_t sum = 0;
	size_t at = 0;

	if (which && len)
		which[0] = '\0';
	*covered = 0;
	bpf_object__for_each_program(prog, c->skel->obj) {
		struct bpf_prog_info info = {};
		__u32 info_len = sizeof(info);
		int fd = bpf_program__fd(prog), n;
		uint64_t miss;

		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &info_len))
			continue;
		miss = info.recursion_misses;
		/* The two state programs do the work of each other's skipped runs. */
		if (prog == c->skel->progs.conn_state || prog == c->skel->progs.conn_state_nested) {
			*covered += miss;
			continue;
		}
		if (!miss)
			continue;
		sum += miss;
		if (!which || at >= len)
			continue;
		n = snprintf(which + at, len - at, "%s%s %llu", at ? ", " : "",
			     bpf_program__name(prog), (unsigned long long)miss);
		at = n < 0 ? len : at + (size_t)n;
	}
	return sum;
}

int capture__stats(struct capture *c, uint64_t out[STAT__MAX])
{
	struct pkt_cpu_stats s;
	__u32 cpu, i;
	int fd = bpf_map__fd(c->skel->maps.stats);

	memset(out, 0, STAT__MAX * sizeof(out[0]));
	for (cpu = 0; cpu < (__u32)c->ncpus; cpu++) {
		if (bpf_map_lookup_elem(fd, &cpu, &s))
			return -errno;
		for (i = 0; i < STAT__MAX; i++)
			out[i] += s.v[i];
	}
	return 0;
}

int capture__uts_name(void *ctx, uint64_t uts_key, char *name, size_t len)
{
	struct capture *c = ctx;
	char buf[65];

	if (bpf_map_lookup_elem(bpf_map__fd(c->skel->maps.uts_names), &uts_key, buf))
		return -errno;
	buf[sizeof(buf) - 1] = 0;
	snprintf(name, len, "%s", buf);
	return 0;
}

const char *capture__cgroup_path(const struct capture *c)
{
	return c->cgroup_path;
}

void capture__destroy(struct capture *c)
{
	if (!c)
		return;
	rings__free(c->rings);
	for (int i = 0; c->ring_fds && i < c->ncpus; i++)
		if (c->ring_fds[i] >= 0)
			close(c->ring_fds[i]);
	free(c->ring_fds);
	for (int d = 0; d < 2; d++) {
		struct capture_filter *cf = &c->filter[d];

		if (cf->link_fd >= 0)
			close(cf->link_fd);
		if (cf->prog_fd >= 0)
			close(cf->prog_fd);
		if (cf->progs_fd >= 0)
			close(cf->progs_fd);
	}
	pktrace_bpf__destroy(c->skel);
	if (c->cgroup_fd >= 0)
		close(c->cgroup_fd);
	free(c);
}
