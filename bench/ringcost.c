// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* What writing one packet record costs, by transport (bench/ringcost.bpf.c says how each is
 * written): for each round, each transport in turn is loaded, attached at the cgroup2 root,
 * read by this process as pktrace reads its rings (every 2 ms), while the traffic command
 * runs; its program's ns per run comes from the kernel's BPF statistics (the traffic command
 * turns them on, as `tcpflood -S` does). Prints each run, then the medians.
 *   ringcost [-r ROUNDS] OBJECT CGROUP2_DIR -- TRAFFIC COMMAND...
 * `make bench-ringcost` runs it on bench/run.sh's traffic. Nothing is pinned. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringcost.h"

#define MODES 4
#define MAX_ROUNDS 20

static const char *const mode_names[MODES] = {
	"nothing written (the hook's floor)",
	"BPF ring buffer per CPU (pktrace's)",
	"own ring per CPU (mmapable array)",
	"perf event output",
};

struct run {
	double ns;
	unsigned long long runs, records;
};

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

static unsigned long long records;

static int on_ring(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	records++;
	return 0;
}

static enum bpf_perf_event_ret on_perf(void *ctx, int cpu, struct perf_event_header *h)
{
	(void)ctx, (void)cpu, (void)h;
	records++;
	return LIBBPF_PERF_EVENT_CONT;
}

/* The own rings: every committed record (first word not 0) up to each CPU's head. */
static void own_consume(unsigned char *map, size_t stride, int ncpus)
{
	for (int c = 0; c < ncpus; c++) {
		struct ringcost_own *o = (struct ringcost_own *)(map + (size_t)c * stride);
		__u64 head = __atomic_load_n(&o->head, __ATOMIC_ACQUIRE), tail = o->tail;

		while (tail < head) {
			__u64 *r = (__u64 *)&o->data[tail & (RINGCOST_OWN_BYTES - 1)];

			if (!__atomic_load_n(&r[0], __ATOMIC_ACQUIRE))
				break; /* still being written */
			r[0] = 0;
			tail += RINGCOST_RECORD;
			records++;
		}
		__atomic_store_n(&o->tail, tail, __ATOMIC_RELEASE);
	}
}

/* What the transport in use holds now. */
static void consume(struct ring_buffer *rb, unsigned char *own, size_t stride, int ncpus,
		    struct perf_buffer *pb)
{
	if (rb)
		ring_buffer__consume(rb);
	else if (own)
		own_consume(own, stride, ncpus);
	else if (pb)
		perf_buffer__consume(pb);
}

static int run_mode(const char *path, int cgroup_fd, int mode, char **cmd, struct run *out)
{
	int ncpus = libbpf_num_possible_cpus(), inner[256], ninner = 0, rc = -1, status;
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct ring_buffer *rb = NULL;
	struct perf_buffer *pb = NULL;
	struct bpf_link *link = NULL;
	unsigned char *own = NULL;
	struct bpf_prog_info info = {};
	__u32 info_len = sizeof(info);
	size_t stride = (sizeof(struct ringcost_own) + 7) & ~(size_t)7, own_len = 0, sz;
	struct bpf_map *rodata, *rings, *ownmap;
	struct timespec tick = {0, 2000000};
	pid_t child;

	if (!obj || ncpus < 1 || ncpus > 256)
		return -1;
	rodata = bpf_object__find_map_by_name(obj, ".rodata");
	rings = bpf_object__find_map_by_name(obj, "rings");
	ownmap = bpf_object__find_map_by_name(obj, "own");
	if (!rodata || !rings || !ownmap || !bpf_map__initial_value(rodata, &sz) ||
	    sz != sizeof(mode) || bpf_map__set_initial_value(rodata, &mode, sizeof(mode)))
		goto out; /* the object's only setting is mode */
	for (ninner = 0; ninner < ncpus; ninner++) {
		inner[ninner] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, NULL, 0, 0, RINGCOST_RING_BYTES,
					       NULL);
		if (inner[ninner] < 0)
			goto out;
	}
	if (bpf_map__set_inner_map_fd(rings, inner[0]) || bpf_map__set_max_entries(rings, ncpus) ||
	    bpf_map__set_max_entries(ownmap, ncpus) || bpf_object__load(obj))
		goto out;
	for (__u32 i = 0; i < (__u32)ncpus; i++)
		if (bpf_map_update_elem(bpf_map__fd(rings), &i, &inner[i], BPF_ANY))
			goto out;
	if (mode == 1) {
		rb = ring_buffer__new(inner[0], on_ring, NULL, NULL);
		for (int i = 1; rb && i < ncpus; i++)
			if (ring_buffer__add(rb, inner[i], on_ring, NULL))
				goto out;
		if (!rb)
			goto out;
	} else if (mode == 2) {
		own_len = ((stride * ncpus) + 4095) & ~(size_t)4095;
		own = mmap(NULL, own_len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(ownmap), 0);
		if (own == MAP_FAILED) {
			own = NULL;
			goto out;
		}
	} else if (mode == 3) {
		/* Woken per 512 KiB, as pktrace's rings are per eighth: not per record. */
		struct perf_event_attr a = {.type = PERF_TYPE_SOFTWARE,
					    .config = PERF_COUNT_SW_BPF_OUTPUT,
					    .sample_type = PERF_SAMPLE_RAW,
					    .size = sizeof(a),
					    .watermark = 1,
					    .wakeup_watermark = 512 * 1024};

		pb = perf_buffer__new_raw(bpf_object__find_map_fd_by_name(obj, "perf"),
					  RINGCOST_RING_BYTES / 4096, &a, on_perf, NULL, NULL);
		if (!pb)
			goto out;
	}
	link = bpf_program__attach_cgroup(bpf_object__find_program_by_name(obj, "ringcost"),
					  cgroup_fd);
	if (!link)
		goto out;
	records = 0;
	child = fork();
	if (child < 0)
		goto out;
	if (child == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execvp(cmd[0], cmd);
		_exit(127);
	}
	while (waitpid(child, &status, WNOHANG) == 0) {
		nanosleep(&tick, NULL);
		consume(rb, own, stride, ncpus, pb);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "ringcost: the traffic command failed\n");
		goto out;
	}
	consume(rb, own, stride, ncpus, pb);
	if (bpf_obj_get_info_by_fd(bpf_program__fd(bpf_object__find_program_by_name(obj, "ringcost")),
				    &info, &info_len) || !info.run_cnt)
		goto out;
	out->ns = (double)info.run_time_ns / info.run_cnt;
	out->runs = info.run_cnt;
	out->records = records;
	rc = 0;
out:
	bpf_link__destroy(link);
	ring_buffer__free(rb);
	perf_buffer__free(pb);
	if (own)
		munmap(own, own_len);
	while (ninner > 0)
		close(inner[--ninner]);
	bpf_object__close(obj);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct run runs[MAX_ROUNDS][MODES];
	int rounds = 3, opt, cg, m, r;
	double med[MODES];

	while ((opt = getopt(argc, argv, "r:h")) != -1) {
		if (opt == 'r' && atoi(optarg) >= 1 && atoi(optarg) <= MAX_ROUNDS) {
			rounds = atoi(optarg);
			continue;
		}
		fprintf(stderr, "usage: %s [-r ROUNDS (1-%d)] OBJECT CGROUP2_DIR -- TRAFFIC COMMAND...\n",
			argv[0], MAX_ROUNDS);
		return opt == 'h' ? 0 : 2;
	}
	if (argc - optind < 3) {
		fprintf(stderr, "usage: %s [-r ROUNDS] OBJECT CGROUP2_DIR -- TRAFFIC COMMAND...\n", argv[0]);
		return 2;
	}
	libbpf_set_print(quiet_libbpf);
	signal(SIGPIPE, SIG_IGN);
	cg = open(argv[optind + 1], O_RDONLY | O_DIRECTORY);
	if (cg < 0) {
		fprintf(stderr, "ringcost: %s: %s\n", argv[optind + 1], strerror(errno));
		return 1;
	}
	/* Rounds of every transport in turn: the host's speed drifts, so each round holds one
	 * run of each, close in time. */
	for (r = 0; r < rounds; r++)
		for (m = 0; m < MODES; m++) {
			if (run_mode(argv[optind], cg, m, argv + optind + 2, &runs[r][m])) {
				fprintf(stderr, "ringcost: %s, round %d: could not run (%s)\n", mode_names[m],
					r + 1, strerror(errno));
				return 1;
			}
			printf("round %d: %-36s %6.0f ns per run (%llu runs, %llu records read)\n", r + 1,
			       mode_names[m], runs[r][m].ns, runs[r][m].runs, runs[r][m].records);
			fflush(stdout);
		}
	printf("\nmedians over %d rounds (128-byte records, ns per hook run, the statistics on):\n",
	       rounds);
	for (m = 0; m < MODES; m++) {
		double v[MAX_ROUNDS];

		for (r = 0; r < rounds; r++)
			v[r] = runs[r][m].ns;
		qsort(v, rounds, sizeof(v[0]), cmp_double);
		med[m] = v[(rounds - 1) / 2];
	}
	for (m = 0; m < MODES; m++)
		printf("  %-36s %6.0f ns, %6.0f above the floor\n", mode_names[m], med[m],
		       med[m] - med[0]);
	if (med[1] > med[0])
		printf("  writing a record: own ring / BPF ring buffer %.2f, perf output / BPF ring buffer %.2f\n",
		       (med[2] - med[0]) / (med[1] - med[0]), (med[3] - med[0]) / (med[1] - med[0]));
	close(cg);
	return 0;
}
